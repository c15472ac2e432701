"""GhostNet blocks (yolov8-ghost): GhostConv, GhostBottleneck, C3Ghost."""

from ultralytics.nn.modules.block import C3Ghost, GhostBottleneck
from ultralytics.nn.modules.conv import GhostConv

from . import handles, trace
from .v5 import c3


@handles(GhostConv)
def ghost_conv(graph, m, x):
    # cat(y, cv2(y)) with cv2 depthwise: both halves of the output are y's channels, so they are one group twice.
    y = trace(graph, m.cv1, x)
    z = trace(graph, m.cv2, y)
    return type(x)(y.groups + z.groups)


@handles(GhostBottleneck)
def ghost_bottleneck(graph, m, x):
    # conv(x) + shortcut(x): conv ends in a GhostConv (its halves one group), so the add splits x's group in two
    # parts that become that one group.
    y = trace(graph, m.conv, x)
    return graph.add(trace(graph, m.shortcut, x), y)


handles(C3Ghost)(c3)  # a C3 whose bottlenecks are GhostBottlenecks
