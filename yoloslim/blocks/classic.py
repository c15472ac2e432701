"""The yolov5 repository's own blocks (classic, anchor-based YOLOv5: v5.0 to v7.0 layouts).

Their forwards are those of the Ultralytics blocks of the same names (Conv, C3, Bottleneck, SPPF, SPP, Concat,
the Ghost blocks), so they share those handlers; CrossConv is a Bottleneck with a (1, k) and a (k, 1) conv.
Focus, the anchor-based Detect and the v7.0 Segment with its Proto are their own. The classes live in the
yolov5 package, which is optional: yoloslim.classic registers them once it is imported, for both copies a
process can hold (`yolov5.models.common`, which the package builds with, and `models.common`, which
checkpoints of the repository pickle).
"""

from torch import nn

from . import HANDLERS, core, ghost, trace, v3, v5
from .tasks import PROTO_REASON


def focus(graph, m, x):
    # conv(cat of the four pixel phases): the image channels four times, side by side
    return trace(graph, m.conv, type(x)(x.groups * 4))


def detect(graph, m, xs):
    # one 1x1 output conv per level (boxes, objectness, classes per anchor): its outputs never shrink
    for conv, x in zip(m.m, xs):
        trace(graph, conv, x)
    if hasattr(m, "proto"):  # Segment
        proto(graph, m.proto, xs[0])
    return None


def proto(graph, m, x):
    # cv3(cv2(upsample(cv1(x)))), the upsample a nearest nn.Upsample (per channel); cv3 writes the protos
    out = trace(graph, m.cv3, trace(graph, m.cv2, trace(graph, m.upsample, trace(graph, m.cv1, x))))
    graph.freeze(out, PROTO_REASON)
    return out


def register(common, yolo) -> None:
    """Handlers for the classes of one copy of models.common and models.yolo (the exact classes, as for every
    family: C3TR's transformer, BottleneckCSP's BatchNorm over two convs, MixConv2d and the rest are refused)."""
    table = {
        common.Conv: core.conv,
        common.DWConv: core.conv,
        common.Concat: core.concat,
        common.Bottleneck: core.bottleneck,
        common.SPPF: core.sppf,
        common.SPP: v3.spp,
        common.C3: v5.c3,
        common.C3x: v5.c3,
        common.C3SPP: v5.c3,
        common.C3Ghost: v5.c3,
        common.CrossConv: core.bottleneck,
        common.GhostConv: ghost.ghost_conv,
        common.GhostBottleneck: ghost.ghost_bottleneck,
        common.Focus: focus,
        common.Proto: proto,
        yolo.Detect: detect,
        yolo.Segment: detect,
    }
    for cls, fn in table.items():
        HANDLERS.setdefault(cls, fn)
    HANDLERS.setdefault(nn.Upsample, core.per_channel)
