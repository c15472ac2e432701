"""YOLOv10: SCDown, PSA, C2fCIB, CIB, RepVGGDW and the v10Detect head."""

from ultralytics.nn.modules.block import CIB, PSA, C2fCIB, RepVGGDW, SCDown
from ultralytics.nn.modules.head import v10Detect

from ..graph import UnsupportedModuleError
from . import handles, refreshes, trace
from .v8 import c2f, c2f_refresh, detect

handles(C2fCIB)(c2f)  # a C2f whose blocks are CIBs
refreshes(C2fCIB)(c2f_refresh)
handles(v10Detect)(detect)  # Detect with depthwise class branches; its one-to-one head is traced like the other


@handles(SCDown)
def scdown(graph, m, x):
    return trace(graph, m.cv2, trace(graph, m.cv1, x))  # a 1x1 conv, then a depthwise strided one


@handles(RepVGGDW)
def rep_vgg_dw(graph, m, x):
    # act(conv(x) + conv1(x)), both depthwise: each output channel is its input channel.
    if not hasattr(m, "conv1"):
        raise UnsupportedModuleError(graph.name(m), "RepVGGDW (fused)")
    trace(graph, m.conv1, x)
    return trace(graph, m.conv, x)


@refreshes(RepVGGDW)
def rep_vgg_dw_refresh(m):
    m.dim = m.conv.conv.out_channels


@handles(CIB)
def cib(graph, m, x):
    y = trace(graph, m.cv1, x)  # depthwise, 1x1, depthwise (or RepVGGDW), 1x1, depthwise
    return graph.add(x, y) if m.add else y


@handles(PSA)
def psa(graph, m, x):
    # cv1's output splits by (c, c); the second half runs through attention and an ffn, each added back.
    a, b = graph.conv(m.cv1.conv, m.cv1.bn, x, parts=2).parts()
    b = graph.add(b, trace(graph, m.attn, b))
    b = graph.add(b, trace(graph, m.ffn, b))
    return trace(graph, m.cv2, type(x)(a.groups + b.groups))


@refreshes(PSA)
def psa_refresh(m):
    m.c = m.cv1.conv.out_channels // 2  # read by forward's split
