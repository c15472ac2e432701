"""A stock DetectionModel with distinct, seeded BN gammas and betas, for tests and benchmarks.

Random init ties every gamma at 1, so pruning would have no ranking; made-up BN statistics make the
activations blow up or die out with depth, so the outputs would hardly depend on the input. Here gammas
are uniform in [0.1, 1), betas normal(0, 0.5), and the running statistics are measured on calibration images.
"""

from __future__ import annotations

import torch
from ultralytics.nn.tasks import DetectionModel


@torch.no_grad()
def seeded_model(cfg: str, seed: int = 0, nc: int | None = None, calibration: list[torch.Tensor] | None = None):
    """calibration: image batches to measure the BN statistics on (default: two batches of two random 64 px
    images); the model is returned in eval mode."""

    torch.manual_seed(seed)
    model = DetectionModel(cfg, nc=nc, verbose=False)
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = torch.rand(m.num_features, generator=gen) * 0.9 + 0.1
            m.bias.data = torch.randn(m.num_features, generator=gen) * 0.5
    return calibrate(model, seed, calibration)


@torch.no_grad()
def calibrate(model, seed: int = 0, calibration: list[torch.Tensor] | None = None):
    """Recompute every BN's running statistics on the calibration batches (gammas and betas untouched)."""
    gen = torch.Generator().manual_seed(seed)
    batches = calibration if calibration is not None else [torch.rand(2, 3, 64, 64, generator=gen) for _ in range(2)]
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    model.train()
    for batch in batches:
        model(batch)
    for m in bns:
        m.momentum = 0.1
    return model.eval()
