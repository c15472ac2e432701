"""YOLOv6: nn.ConvTranspose2d (the neck's learned 2x upsampling)."""

from torch import nn

from . import handles


@handles(nn.ConvTranspose2d)
def conv_transpose(graph, m, x):
    # It mixes channels (groups=1) and has no BatchNorm. A removed input channel's constant would reach its output
    # as a per-tap pattern (stride = kernel: each output pixel sees one tap), which no per-channel bias can fold,
    # and its outputs have no gamma to rank them: both sides keep their width.
    name = graph.name(m)
    graph.freeze(x, f"read by {name} (ConvTranspose2d): a removed channel's constant cannot be folded through it")
    out = graph.new_group(m.out_channels, name, frozen=f"written by {name} (ConvTranspose2d, no BatchNorm)")
    return type(x)([out])
