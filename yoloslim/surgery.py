"""Slice the model in place to the kept channels, folding removed channels' constant output forward.

A removed channel's BN has (near) zero gamma, so it emits a constant: act(beta), summed along a
residual chain, carried unchanged through concat, upsample and max-pool. Its consumers used to
add W * constant to every output; we fold that into their BN running_mean (or conv bias), so
the slim model matches the masked one. The constants are measured, not derived: one forward pass
with the removed gammas set to zero and a hook on each consumer reads what it receives.

Exact for 1x1 consumers. For kxk consumers it is exact at interior pixels; at the borders the
stock conv zero-pads, so there the removed channel contributed only part of W * constant and the
fold over-corrects by the taps that fell in the padding (nn.ZeroPad2d, in yolov3-tiny, does the same).
Per-channel tensors outside convs and BNs (Group.params, e.g. A2C2f's residual scale) are sliced too.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from .graph import Consumer, Graph, Group, Producer


@torch.no_grad()
def apply(model: nn.Module, graph: Graph, kept: dict[Group, list[int]], compensate: bool = True) -> None:
    removed = {g: sorted(set(range(g.size)) - set(k)) for g, k in kept.items() if len(k) < g.size}
    if not removed:
        return
    if compensate:
        fold(measure_constants(model, removed))

    keep = {g: kept.get(g, range(g.size)) for g in graph.groups()}
    out_idx: dict[nn.Conv2d, list[int]] = defaultdict(list)
    in_idx: dict[nn.Conv2d, list[int]] = defaultdict(list)
    owners: dict[nn.Conv2d, Producer] = {}
    param_idx: dict[tuple[nn.Module, str], list[int]] = defaultdict(list)
    for g, k in keep.items():
        for q in g.params:
            param_idx[q.owner, q.attr] += [q.offset + i for i in k]
        for p in g.producers:
            out_idx[p.conv] += [p.offset + i for i in k]
            owners[p.conv] = p
        for c in g.consumers:
            in_idx[c.conv] += [c.offset + i for i in k]
    for conv, idx in out_idx.items():
        if len(idx) < conv.out_channels:
            slice_outputs(conv, owners[conv].bn, sorted(idx), owners[conv].depthwise)
    for conv, idx in in_idx.items():
        if len(idx) < conv.in_channels:
            slice_inputs(conv, sorted(idx))
    for (owner, attr), idx in param_idx.items():
        old = getattr(owner, attr)
        if len(idx) < len(old):
            setattr(owner, attr, _param(old, old.data[torch.tensor(sorted(idx), device=old.device)]))
    # the modules' own attributes (channel counts such as C2f.c) are updated by the adapter: blocks.refresh


def measure_constants(model: nn.Module, removed: dict[Group, list[int]]) -> dict:
    """consumer -> (removed input channels, the constant each carries) with removed gammas at zero."""
    wanted: dict = defaultdict(list)
    for g, idx in removed.items():
        for c in g.consumers:
            wanted[c].extend(c.offset + i for i in idx)
    saved: list[tuple[torch.Tensor, torch.Tensor]] = []
    seen: dict[Consumer, torch.Tensor] = {}
    for g, idx in removed.items():
        for p in g.producers:
            if p.bn is not None:
                saved.append((p.bn.weight, p.bn.weight.detach().clone()))
                p.bn.weight.data[[p.offset + i for i in idx]] = 0

    def capture(consumer, idx):
        return lambda module, inputs: seen.__setitem__(consumer, inputs[0][0, idx].float().mean((1, 2)))

    hooks = [c.conv.register_forward_pre_hook(capture(c, idx)) for c, idx in wanted.items()]
    training = model.training
    try:
        model.eval()
        first = next(model.parameters())
        side = 2 * int(max(getattr(model, "stride", torch.tensor([32.0])).max().item(), 32))
        model(torch.zeros(1, 3, side, side, dtype=first.dtype, device=first.device))
    finally:
        for h in hooks:
            h.remove()
        for weight, value in saved:
            weight.data.copy_(value)
        model.train(training)
    return {c: (idx, seen[c]) for c, idx in wanted.items() if c in seen}


def fold(constants: dict) -> None:
    for consumer, (idx, values) in constants.items():
        w = consumer.conv.weight
        delta = (w[:, idx].float().sum((2, 3)) * values.to(w.device)).sum(1).to(w.dtype)
        if consumer.bn is not None:
            consumer.bn.running_mean -= delta
        else:
            if consumer.conv.bias is None:
                consumer.conv.bias = nn.Parameter(torch.zeros_like(delta))
            consumer.conv.bias.data += delta


def _param(old: torch.Tensor, new: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(new.clone(), requires_grad=old.requires_grad)


def slice_outputs(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, idx: list[int], depthwise: bool) -> None:
    index = torch.tensor(idx, device=conv.weight.device)
    conv.weight = _param(conv.weight, conv.weight.data[index])
    if conv.bias is not None:
        conv.bias = _param(conv.bias, conv.bias.data[index])
    conv.out_channels = len(idx)
    if depthwise:
        conv.in_channels = conv.groups = len(idx)
    if bn is not None:
        bn.weight = _param(bn.weight, bn.weight.data[index])
        bn.bias = _param(bn.bias, bn.bias.data[index])
        assert bn.running_mean is not None and bn.running_var is not None  # Ultralytics' BNs track statistics
        bn.running_mean = bn.running_mean[index].clone()
        bn.running_var = bn.running_var[index].clone()
        bn.num_features = len(idx)


def slice_inputs(conv: nn.Conv2d, idx: list[int]) -> None:
    index = torch.tensor(idx, device=conv.weight.device)
    conv.weight = _param(conv.weight, conv.weight.data[:, index])
    conv.in_channels = len(idx)
