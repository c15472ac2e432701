"""YOLOv9: RepNCSPELAN4, ELAN1, RepCSP, RepBottleneck, RepConv, AConv, ADown, SPPELAN, CBLinear, CBFuse."""

from ultralytics.nn.modules.block import (
    ELAN1,
    SPPELAN,
    AConv,
    ADown,
    CBFuse,
    CBLinear,
    RepBottleneck,
    RepCSP,
    RepNCSPELAN4,
)
from ultralytics.nn.modules.conv import RepConv

from ..graph import UnsupportedModuleError
from . import handles, refreshes, trace
from .core import bottleneck
from .v5 import c3

handles(RepCSP)(c3)  # a C3 of RepBottlenecks
handles(RepBottleneck)(bottleneck)  # a Bottleneck whose cv1 is a RepConv


@handles(RepConv)
def rep_conv(graph, m, x):
    # act(conv1(x) + conv2(x)): a 3x3 and a 1x1 conv of x, summed, so their output channels are one group.
    if not hasattr(m, "conv1"):
        raise UnsupportedModuleError(graph.name(m), "RepConv (fused)")
    if m.bn is not None:  # + bn(x): an identity branch no stock yaml builds
        raise UnsupportedModuleError(graph.name(m), "RepConv with an identity BatchNorm")
    return graph.add(trace(graph, m.conv1, x), trace(graph, m.conv2, x))


@handles(RepNCSPELAN4, ELAN1)
def rep_ncsp_elan4(graph, m, x):
    # cv1's output is chunked into two halves that must stay equal; cv2 reads the second, cv3 reads cv2's output,
    # and cv4 reads all four side by side (as in C2f).
    ys = list(graph.conv(m.cv1.conv, m.cv1.bn, x, parts=2).parts())
    for block in (m.cv2, m.cv3):
        ys.append(trace(graph, block, ys[-1]))
    return trace(graph, m.cv4, type(x)([g for y in ys for g in y.groups]))


@refreshes(RepNCSPELAN4, ELAN1)
def elan_refresh(m):
    m.c = m.cv1.conv.out_channels // 2  # read by forward_split


@handles(AConv)
def aconv(graph, m, x):
    return trace(graph, m.cv1, x)  # after a per-channel average pool (no padding: a constant stays constant)


@handles(ADown)
def adown(graph, m, x):
    # The input (average-pooled per channel) is chunked in two: cv1 reads the first half, cv2 the max-pooled second.
    # The halves must keep equal counts; the output is the two convs side by side.
    left, right = graph.halves(x, graph.name(m))
    return type(x)(trace(graph, m.cv1, left).groups + trace(graph, m.cv2, right).groups)


@handles(SPPELAN)
def sppelan(graph, m, x):
    # cv5 reads cv1's output and three successive max-pools of it side by side: the same channels at four offsets.
    y = trace(graph, m.cv1, x)
    return trace(graph, m.cv5, type(y)(y.groups * 4))


@handles(CBLinear)
def cb_linear(graph, m, x):
    # One biased conv without BatchNorm, its output split into c2s pieces for CBFuse: no gamma ranks those channels.
    out = graph.conv(m.conv, None, x)
    graph.freeze(out, f"written by {graph.name(m)} (CBLinear: a conv without BatchNorm, no gamma ranks its channels)")
    return [type(x)([g]) for g in graph.split(out.groups[0], list(m.c2s))] if len(m.c2s) > 1 else [out]


@handles(CBFuse)
def cb_fuse(graph, m, xs):
    # sum of the last input and one (resized) CBLinear piece from each of the others: a residual add.
    out = xs[-1]
    for pieces, index in zip(xs[:-1], m.idx):
        out = graph.add(out, pieces[index])
    return out
