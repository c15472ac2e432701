"""YOLOv8: C2f (and YOLO11's C3k2, same forward), C2 (yolov8-p6) and the Detect head."""

from ultralytics.nn.modules.block import C2, C2f, C3k2
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


@handles(C2)
def c2(graph, m, x):
    # cv2(cat(m(a), b)) with a, b the equal halves of cv1's output (chunk)
    a, b = graph.conv(m.cv1.conv, m.cv1.bn, x, parts=2).parts()
    return trace(graph, m.cv2, type(x)(trace(graph, m.m, a).groups + b.groups))


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
