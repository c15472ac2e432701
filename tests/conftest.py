import os

os.environ.setdefault("YOLO_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

SCALES = "nsmlx"
FAMILIES = ("yolov5", "yolov8", "yolo11")
ALL_CONFIGS = [f"{f}{s}.yaml" for f in FAMILIES for s in SCALES]
SMALL_CONFIGS = [f"{f}n.yaml" for f in FAMILIES]


def build(cfg: str, seed: int = 0, nc: int | None = None):
    """A stock DetectionModel from yaml with deliberate, distinct BN statistics (random init ties all gammas at 1)."""
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    model = DetectionModel(cfg, nc=nc, verbose=False)
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=gen) * 0.9 + 0.1
            m.bias.data = torch.randn(n, generator=gen) * 0.5
            m.running_mean = torch.randn(n, generator=gen) * 0.1
            m.running_var = torch.rand(n, generator=gen) + 0.5
    return model.eval()


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
    return {"epochs": 1, "imgsz": 64, "batch": 4, "nbs": 4, "workers": 0, "device": "cpu", "plots": False,
            "project": str(tmp_path), "exist_ok": True, "warmup_epochs": 0, "seed": 0, "deterministic": True, **kw}
