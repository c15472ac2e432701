"""YOLOv3 variants: SPP (yolov3-spp) and ZeroPad2d (yolov3-tiny)."""

from torch import nn
from ultralytics.nn.modules.block import SPP

from . import handles, trace


@handles(SPP)
def spp(graph, m, x):
    # cv2 reads cv1's output and its max-pools side by side: the same channels at len(m) + 1 offsets.
    y = trace(graph, m.cv1, x)
    return trace(graph, m.cv2, type(y)(y.groups * (len(m.m) + 1)))


@handles(nn.ZeroPad2d)
def zero_pad(graph, m, x):
    """Pads each channel alone: channels pass through (a removed channel's constant becomes 0 on the padded rows
    and columns, like a kxk conv's zero padding: the fold is exact inside, approximate on that border)."""
    return x
