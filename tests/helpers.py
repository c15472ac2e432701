"""Shared test helpers (plain functions and constants; the fixtures live in conftest.py)."""

import pytest

SCALES = "nsmlx"
FAMILIES = ("yolov5", "yolov8", "yolo11")
ALL_CONFIGS = [f"{f}{s}.yaml" for f in FAMILIES for s in SCALES]
SMALL_CONFIGS = [f"{f}n.yaml" for f in FAMILIES]
# every config, the m/l/x ones marked slow: 'make test-fast' proves n and s, 'make test' all fifteen
EVERY_CONFIG = [pytest.param(c, marks=pytest.mark.slow) if c[-6] in "mlx" else c for c in ALL_CONFIGS]


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
