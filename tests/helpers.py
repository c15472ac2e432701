"""Shared test helpers (plain functions and constants; the fixtures live in conftest.py)."""

import pytest

SCALES = "nsmlx"
FAMILIES = ("yolov5", "yolov8", "yolo11")
ALL_CONFIGS = [f"{f}{s}.yaml" for f in FAMILIES for s in SCALES]
SMALL_CONFIGS = [f"{f}n.yaml" for f in FAMILIES]
# every config, all but n marked slow: 'make test-fast' proves each family at n, 'make test' all fifteen
EVERY_CONFIG = [pytest.param(c, marks=pytest.mark.slow) if c[-6] in "smlx" else c for c in ALL_CONFIGS]


def fast_only(fast: str, values: list) -> list:
    """values with all but `fast` marked slow: the fast tier proves one case, 'make test' every one."""
    return [v if v == fast else pytest.param(v, marks=pytest.mark.slow) for v in values]


def build(cfg: str, seed: int = 0, nc: int | None = None):
    """A stock DetectionModel with distinct seeded gammas and betas and calibrated BN statistics (yoloslim.seeded)."""
    from yoloslim.seeded import seeded_model

    return seeded_model(cfg, seed, nc)


def calibrate(model, seed: int = 0):
    from yoloslim.seeded import calibrate as measure

    return measure(model, seed)


def raw_outputs(model, x):
    from yoloslim.seeded import raw_outputs as outputs

    return outputs(model, x)


def masked_pruning_error(model, image) -> float:
    """Zero random channels of every prunable group (gamma and beta), remove them, and return the relative change
    of the raw outputs in float64 (exact surgery: ~1e-12), asserting along the way that most of the model is
    prunable, that exactly the masked channels went and that the model shrank."""
    from yoloslim.seeded import calibrate as measure
    from yoloslim.seeded import mask_random_channels, prune_masked
    from yoloslim.seeded import raw_outputs as outputs
    from yoloslim.slimming import graph_of

    graph = graph_of(model)
    live = [g for g in graph.groups() if not g.frozen_reasons]
    assert len(live) > 0.6 * len(graph.groups())  # most of the model is prunable, not frozen away
    chosen = mask_random_channels(graph, seed=1)
    measure(model)
    model.double()
    before = outputs(model, image.double())
    params_before = sum(p.numel() for p in model.parameters())
    kept = prune_masked(model, graph)
    assert all(len(kept[g]) == g.size - len(idx) for g, idx in chosen.items())
    assert sum(p.numel() for p in model.parameters()) < 0.8 * params_before
    return rel_err(outputs(model, image.double()), before)


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max())


def tiny_train_args(tmp_path, **kw):
    return {
        "epochs": 1,
        "imgsz": 64,
        "batch": 4,
        "nbs": 4,
        "workers": 0,
        "device": "cpu",
        "plots": False,
        "project": str(tmp_path),
        "exist_ok": True,
        "warmup_epochs": 0,
        "seed": 0,
        "deterministic": True,
        **kw,
    }
