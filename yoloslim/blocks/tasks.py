"""The other tasks' heads (v8 and YOLO11): Segment (with its Proto branch), Pose and OBB.

Each is Detect plus a third branch per level, cv4: conv, conv, then a 1x1 output conv whose channels are the
task's own (mask coefficients, keypoint coordinates, angles) and never shrink; the convs before it are free.
"""

from ultralytics.nn.modules.block import Proto
from ultralytics.nn.modules.head import OBB, Pose, Segment

from . import handles, trace
from .v8 import detect

PROTO_REASON = "mask prototypes: their count (nm) is what the mask coefficients weigh"


@handles(Segment, Pose, OBB)
def task_head(graph, m, xs):
    detect(graph, m, xs)
    for branch in (m.cv4, getattr(m, "one2one_cv4", None)):
        for level, x in zip(branch or [], xs):
            trace(graph, level, x)
    if isinstance(m, Segment):
        trace(graph, m.proto, xs[0])
    return None


@handles(Proto)
def proto(graph, m, x):
    # cv3(cv2(upsample(cv1(x)))): upsample is a ConvTranspose2d (both its sides stay, see v6.py); cv2's output is
    # free; cv3 writes the protos.
    out = trace(graph, m.cv3, trace(graph, m.cv2, trace(graph, m.upsample, trace(graph, m.cv1, x))))
    graph.freeze(out, PROTO_REASON)
    return out
