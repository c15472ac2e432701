"""YOLO12: A2C2f, ABlock and AAttn (area attention)."""

from ultralytics.nn.modules.block import A2C2f, AAttn, ABlock

from . import handles, trace

AREA_ATTENTION_REASON = "area attention: its head layout (num_heads x head_dim) is fixed"


@handles(AAttn)
def area_attention(graph, m, x):
    # qkv and pe are laid out by head and stay whole; the forward reads all_head_dim, never x's width, so the
    # input (read by qkv) and proj's output (added back to x by ABlock) are free to shrink.
    qkv = trace(graph, m.qkv, x)
    graph.freeze(qkv, AREA_ATTENTION_REASON)
    v = graph.untraced(m.pe.conv.in_channels, f"{graph.name(m)}.v", AREA_ATTENTION_REASON)  # a view of qkv
    pe = trace(graph, m.pe, v)  # depthwise on v, summed with the attention output: proj reads that sum
    graph.freeze(pe, AREA_ATTENTION_REASON)
    return trace(graph, m.proj, pe)


@handles(ABlock)
def area_block(graph, m, x):
    x = graph.add(x, trace(graph, m.attn, x))
    return graph.add(x, trace(graph, m.mlp, x))  # the mlp's hidden width is freely prunable


@handles(A2C2f)
def a2c2f(graph, m, x):
    # cv2(cat(y0, m0(y0), m1(m0(y0)), ...)); with residual (l/x scales) x + gamma * that, gamma per channel.
    ys = [trace(graph, m.cv1, x)]
    for block in m.m:
        ys.append(trace(graph, block, ys[-1]))
    out = trace(graph, m.cv2, type(x)([g for y in ys for g in y.groups]))
    if m.gamma is None:
        return out
    graph.scale(out, m, "gamma")
    return graph.add(x, out)
