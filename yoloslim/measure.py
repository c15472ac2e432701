"""Size of a model, per layer: output channels, parameters, conv GFLOPs (shared by prune, export, reports)."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn


@torch.no_grad()
def layer_stats(model: nn.Module, imgsz: int = 640) -> pd.DataFrame:
    """Per top-level layer: output channels, parameters and conv GFLOPs at imgsz (measured at a small
    size and scaled: conv outputs scale exactly with the image area when imgsz is a multiple of 32)."""
    side = 2 * int(max(getattr(model, "stride", torch.tensor([32.0])).max().item(), 32))
    scale = (imgsz / side) ** 2
    flops, channels, hooks = {}, {}, []
    layer_of = {}
    for i, layer in enumerate(model.model):
        for m in layer.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                layer_of[m] = i

        def keep_channels(module, inputs, output, i=i):
            channels[i] = output.shape[1] if isinstance(output, torch.Tensor) else 0

        hooks.append(layer.register_forward_hook(keep_channels))

    def count(module, inputs, output):
        k = module.weight[0].numel()  # (in / groups) * kh * kw; transposed: (out / groups) * kh * kw
        spread = inputs[0] if isinstance(module, nn.ConvTranspose2d) else output  # which side each tap runs over
        flops[layer_of[module]] = flops.get(layer_of[module], 0) + 2 * spread.numel() * k * scale / 1e9

    hooks += [m.register_forward_hook(count) for m in layer_of]
    training = model.training
    try:
        model.eval()
        p = next(model.parameters())
        model(torch.zeros(1, 3, side, side, dtype=p.dtype, device=p.device))
    finally:
        for h in hooks:
            h.remove()
        model.train(training)
    rows = [
        {
            "layer": i,
            "module": type(layer).__name__,
            "channels": channels.get(i, 0),
            "params": sum(q.numel() for q in layer.parameters()),
            "gflops": flops.get(i, 0.0),
        }
        for i, layer in enumerate(model.model)
    ]
    return pd.DataFrame(rows)


def layer_table(before: nn.Module, after: nn.Module, imgsz: int = 640) -> pd.DataFrame:
    a, b = layer_stats(before, imgsz), layer_stats(after, imgsz)
    table = a[["layer", "module"]].copy()
    for col in ("channels", "params", "gflops"):
        table[f"{col}_before"], table[f"{col}_after"] = a[col], b[col]
    total = {"layer": "all", "module": "", "channels_before": "", "channels_after": ""}
    for col in ("params_before", "params_after", "gflops_before", "gflops_after"):
        total[col] = table[col].sum()
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return table.round({"gflops_before": 3, "gflops_after": 3})
