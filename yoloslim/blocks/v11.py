"""YOLO11: C2PSA, PSABlock and Attention (C3k2 and C3k are traced as C2f and C3)."""

from ultralytics.nn.modules.block import C2PSA, Attention, PSABlock

from . import handles, trace

ATTENTION_REASON = "attention: its head layout (num_heads x head_dim) is fixed"


@handles(Attention)
def attention(graph, m, x):
    graph.freeze(x, ATTENTION_REASON)
    qkv = trace(graph, m.qkv, x)
    graph.freeze(qkv, ATTENTION_REASON)
    v = graph.untraced(m.pe.conv.in_channels, f"{graph.name(m)}.v", ATTENTION_REASON)  # a view of qkv
    pe = graph.conv(m.pe.conv, m.pe.bn, v)
    graph.freeze(pe, ATTENTION_REASON)
    out = trace(graph, m.proj, pe)
    graph.freeze(out, ATTENTION_REASON)
    return out


@handles(PSABlock)
def psa_block(graph, m, x):
    a = trace(graph, m.attn, x)
    x = graph.add(x, a) if m.add else a
    f = trace(graph, m.ffn, x)  # ffn's hidden width (2c) is freely prunable
    return graph.add(x, f) if m.add else f


@handles(C2PSA)
def c2psa(graph, m, x):
    # cv1 splits by (self.c, self.c): both halves equal, and the second feeds attention.
    a, b = graph.conv(m.cv1.conv, m.cv1.bn, x, parts=2).parts()
    b = trace(graph, m.m, b)
    return trace(graph, m.cv2, type(x)(a.groups + b.groups))
