"""YOLOv8: C2f (and YOLO11's C3k2, same forward) and the Detect head."""

from ultralytics.nn.modules.block import C2f, C3k2
from ultralytics.nn.modules.head import Detect

from . import handles, refreshes, trace


@handles(C2f, C3k2)
def c2f(graph, m, x):
    # cv1's output is chunked into two halves that must stay equal; the second half runs
    # through m[0], m[1], ... and every intermediate output is concatenated into cv2.
    halves = graph.conv(m.cv1.conv, m.cv1.bn, x, parts=2).parts()
    ys = list(halves)
    for block in m.m:
        ys.append(trace(graph, block, ys[-1]))
    return trace(graph, m.cv2, type(x)([g for y in ys for g in y.groups]))


@refreshes(C2f, C3k2)
def c2f_refresh(m):
    m.c = m.cv1.conv.out_channels // 2  # read by forward_split


@handles(Detect)
def detect(graph, m, xs):
    heads = [m.cv2, m.cv3]
    if getattr(m, "one2one_cv2", None) is not None:  # end2end models carry a second head
        heads += [m.one2one_cv2, m.one2one_cv3]
    for head in heads:
        if head is None:
            continue
        for level, x in zip(head, xs):
            trace(graph, level, x)
    return None
