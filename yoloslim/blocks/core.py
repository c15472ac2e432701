"""Blocks shared by every family: Conv, DWConv, Concat, Upsample, Bottleneck, SPPF, Sequential."""

from torch import nn
from ultralytics.nn.modules.block import SPPF, Bottleneck
from ultralytics.nn.modules.conv import Concat, Conv, DWConv

from . import handles, trace


@handles(Conv, DWConv)
def conv(graph, m, x):
    return graph.conv(m.conv, m.bn, x)


@handles(nn.Conv2d)
def plain_conv(graph, m, x):
    """A conv without BN (a head's output: boxes, classes, masks, keypoints, angles): its outputs never shrink."""
    graph.consume(m, None, x)
    out = graph.new_group(m.out_channels, graph.name(m), frozen="model output (a head's output conv)")
    return type(x)([out])


@handles(nn.Sequential)
def sequential(graph, m, x):
    for child in m:
        x = trace(graph, child, x)
    return x


@handles(Concat)
def concat(graph, m, xs):
    if m.d != 1:
        raise ValueError(f"{graph.name(m)} concatenates along dim {m.d}; only channel concat is supported")
    return type(xs[0])([g for x in xs for g in x.groups])


@handles(nn.Upsample, nn.MaxPool2d, nn.Identity)
def per_channel(graph, m, x):
    """Acts on each channel alone: channels (and a removed channel's constant value) pass through."""
    return x


@handles(Bottleneck)
def bottleneck(graph, m, x):
    y = trace(graph, m.cv2, trace(graph, m.cv1, x))
    return graph.add(x, y) if m.add else y


@handles(SPPF)
def sppf(graph, m, x):
    # cv1's output is pooled n times; cv2 reads the same channels at n + 1 offsets.
    y = trace(graph, m.cv1, x)
    out = trace(graph, m.cv2, type(y)(y.groups * (getattr(m, "n", 3) + 1)))
    return graph.add(x, out) if getattr(m, "add", False) else out
