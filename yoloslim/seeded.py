"""A stock model (detect, segment, pose, obb) with distinct, seeded BN gammas and betas, and the masked-channel
equivalence check, for tests and benchmarks.

Random init ties every gamma at 1, so pruning would have no ranking; made-up BN statistics make the
activations blow up or die out with depth, so the outputs would hardly depend on the input. Here gammas
are uniform in [0.1, 1), betas normal(0, 0.5), and the running statistics are measured on calibration images.
"""

from __future__ import annotations

import torch

from . import classic
from .checkpoint import model_from_yaml


@torch.no_grad()
def seeded_model(cfg: str, seed: int = 0, nc: int | None = None, calibration: list[torch.Tensor] | None = None):
    """calibration: image batches to measure the BN statistics on (default: two batches of two random images of
    64 px, or twice the largest stride); the model is returned in eval mode."""

    torch.manual_seed(seed)
    model = classic.from_yaml(cfg, nc=nc) if classic.is_classic_yaml(cfg) else model_from_yaml(cfg, nc=nc)
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
    side = max(64, 2 * int(model.stride.max()))  # a P6 level of a 64 px image is one pixel: too few for statistics
    batches = (
        calibration if calibration is not None else [torch.rand(2, 3, side, side, generator=gen) for _ in range(2)]
    )
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


def mask_random_channels(graph, seed: int, keep_beta: bool = False, select=lambda g: True) -> dict:
    """Pick random channels in every selected prunable group (equal counts across tied halves) and zero their
    gamma (and beta unless keep_beta): the "masked" model of an equivalence check. Returns {group: indices}."""
    gen = torch.Generator().manual_seed(seed)
    groups = [g for g in graph.groups() if not g.frozen_reasons and select(g) and g.size > 1]
    for members in graph.tie_classes():  # a chosen half brings its twin: both must stay equal
        if any(g in groups for g in members):
            groups += [g for g in members if g not in groups and not g.frozen_reasons]
    counts = {g: int(torch.randint(1, g.size, (1,), generator=gen)) for g in groups}
    for members in graph.tie_classes():
        live = [g for g in members if g in counts]
        if live:
            n = min(counts[g] for g in live)
            counts.update({g: n for g in live})
    chosen = {}
    for g in groups:
        chosen[g] = sorted(torch.randperm(g.size, generator=gen)[: counts[g]].tolist())
        for p in g.producers:
            idx = [p.offset + i for i in chosen[g]]
            p.bn.weight.data[idx] = 0
            if not keep_beta:
                p.bn.bias.data[idx] = 0
    return chosen


def prune_masked(model, graph) -> dict:
    """Remove exactly the channels whose gammas are zero (no floors); returns {group: kept indices}."""
    from .plan import make_plan, resolve
    from .slimming import prune_in_place

    plan = make_plan(graph, threshold=1e-6, min_keep=0, max_group_ratio=1)
    kept = resolve(graph, plan)
    prune_in_place(model, graph, plan)
    return kept


@torch.no_grad()
def raw_outputs(model, x):
    """Every raw output of the head before decoding, flattened side by side: box distributions and class logits,
    and the task's own (mask coefficients and prototypes, keypoints, angles), of both heads of an end2end model."""
    model.eval()
    if classic.is_classic(model):  # (decoded, per-level raw) or, segment, (decoded, protos, per-level raw)
        out = model(x)
        parts = [*out[-1], *out[1:-1]]
        return torch.cat([v.flatten(1) for v in parts], 1)
    _, preds = model(x)
    heads = [preds["one2many"], preds["one2one"]] if "one2one" in preds else [preds]
    parts = [v for h in heads for k, v in sorted(h.items()) if k != "feats" and torch.is_tensor(v)]
    return torch.cat([v.flatten(1) for v in parts], 1)


def masked_equivalence_error(cfg: str, seed: int = 1, imgsz: int = 128) -> float:
    """max |slim - masked| / max |masked| of the raw outputs, in float64: random channels of every prunable group
    zeroed (gamma and beta), then removed. Surgery is exact when this is ~1e-12."""
    from .slimming import graph_of

    model = seeded_model(cfg, seed)
    graph = graph_of(model)
    mask_random_channels(graph, seed)
    calibrate(model, seed)  # statistics of the masked model, so its outputs still depend on the input
    model.double()
    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    before = raw_outputs(model, x)
    prune_masked(model, graph)
    return float((raw_outputs(model, x) - before).abs().max() / before.abs().max())
