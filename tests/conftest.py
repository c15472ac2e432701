import os

os.environ.setdefault("YOLO_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

SCALES = "nsmlx"
FAMILIES = ("yolov5", "yolov8", "yolo11")
ALL_CONFIGS = [f"{f}{s}.yaml" for f in FAMILIES for s in SCALES]
SMALL_CONFIGS = [f"{f}n.yaml" for f in FAMILIES]
# every config, the m/l/x ones marked slow: 'make test-fast' proves n and s, 'make test' all fifteen
EVERY_CONFIG = [pytest.param(c, marks=pytest.mark.slow) if c[-6] in "mlx" else c for c in ALL_CONFIGS]


def build(cfg: str, seed: int = 0, nc: int | None = None):
    """A stock DetectionModel with distinct seeded gammas and betas and calibrated BN statistics (yoloslim.seeded)."""
    from yoloslim.seeded import seeded_model

    return seeded_model(cfg, seed, nc)


def calibrate(model, seed: int = 0):
    from yoloslim.seeded import calibrate as measure

    return measure(model, seed)


@torch.no_grad()
def raw_outputs(model, x):
    """Detect's raw box-distribution and class logits, before decoding."""
    model.eval()
    _, preds = model(x)
    return torch.cat([preds["boxes"], preds["scores"]], 1)


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture
def image():
    return torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(123))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A real generated YOLO dataset, small enough for one-epoch runs at imgsz 64."""
    from yoloslim.data import synth

    return synth(tmp_path_factory.mktemp("data") / "tea", train=16, val=8, imgsz=64, seed=0)


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
