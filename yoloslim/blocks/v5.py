"""YOLOv5 (Ultralytics 'u' models): C3 and its YOLO11 subclass C3k."""

from ultralytics.nn.modules.block import C3, C3k

from . import handles, trace


@handles(C3, C3k)
def c3(graph, m, x):
    # cv3(cat(m(cv1(x)), cv2(x)))
    a = trace(graph, m.m, trace(graph, m.cv1, x))
    b = trace(graph, m.cv2, x)
    return trace(graph, m.cv3, type(x)(a.groups + b.groups))
