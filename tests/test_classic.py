"""Classic YOLOv5 (the ultralytics/yolov5 repository's anchor-based models): load, prune exactly, save in the
repository's layout, run with its own code, export checked, validated by Ultralytics' validator."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import fast_only, masked_pruning_error

from yoloslim import YoloslimError, classic
from yoloslim.checkpoint import load_model
from yoloslim.seeded import seeded_model
from yoloslim.slimming import graph_of

yolov5 = pytest.importorskip("yolov5")  # installed by make install (requirements-yolov5.txt): CI always has it
YAMLS = Path(yolov5.__file__).parent / "models"
ROOT = Path(__file__).resolve().parents[1]
CLASSIC = [
    "yolov5n.yaml",
    "yolov5s.yaml",
    "yolov5m.yaml",
    "hub/yolov5n6.yaml",  # P6: four levels
    "hub/yolov5s6.yaml",
    "segment/yolov5n-seg.yaml",  # Segment with its Proto
    "hub/yolov3-tiny.yaml",
    "hub/yolov5s-ghost.yaml",
]
# v5.0 (April 2021): a Focus stem, SPP, and three C3 necks; the layout of most checkpoints in the wild
V50_YAML = """
nc: 4
depth_multiple: 0.33
width_multiple: 0.25
anchors:
  - [10,13, 16,30, 33,23]
  - [30,61, 62,45, 59,119]
  - [116,90, 156,198, 373,326]
backbone:
  [[-1, 1, Focus, [64, 3]],
   [-1, 1, Conv, [128, 3, 2]],
   [-1, 3, C3, [128]],
   [-1, 1, Conv, [256, 3, 2]],
   [-1, 9, C3, [256]],
   [-1, 1, Conv, [512, 3, 2]],
   [-1, 9, C3, [512]],
   [-1, 1, Conv, [1024, 3, 2]],
   [-1, 1, SPP, [1024, [5, 9, 13]]],
   [-1, 3, C3, [1024, False]],
  ]
head:
  [[-1, 1, Conv, [512, 1, 1]],
   [-1, 1, nn.Upsample, [None, 2, 'nearest']],
   [[-1, 6], 1, Concat, [1]],
   [-1, 3, C3, [512, False]],
   [-1, 1, Conv, [256, 1, 1]],
   [-1, 1, nn.Upsample, [None, 2, 'nearest']],
   [[-1, 4], 1, Concat, [1]],
   [-1, 3, C3, [256, False]],
   [-1, 1, Conv, [256, 3, 2]],
   [[-1, 14], 1, Concat, [1]],
   [-1, 3, C3, [512, False]],
   [-1, 1, Conv, [512, 3, 2]],
   [[-1, 10], 1, Concat, [1]],
   [-1, 3, C3, [1024, False]],
   [[17, 20, 23], 1, Detect, [nc, anchors]],
  ]
"""


@pytest.fixture(scope="module")
def real_weights():
    """The repository's COCO yolov5s.pt and a user's v5.0-layout model, from the registry (scripts/fetch_coco.py)."""
    names = ["yolov5s.pt", "yolov5s-ki67.pt"]
    if not all((ROOT / "weights" / n).exists() for n in names):
        subprocess.run(
            [sys.executable, "scripts/fetch_coco.py", f"only={','.join(names)}"], cwd=ROOT, check=True, timeout=900
        )
    return {n: ROOT / "weights" / n for n in names}


@pytest.fixture(scope="module")
def v50_yaml(tmp_path_factory):
    path = tmp_path_factory.mktemp("v50") / "yolov5s-v5.0.yaml"
    path.write_text(V50_YAML)
    return path


@pytest.mark.parametrize("cfg", fast_only("yolov5n.yaml", CLASSIC))
def test_removing_masked_channels_keeps_classic_outputs(cfg, image):
    model = seeded_model(str(YAMLS / cfg), seed=0)
    assert classic.is_classic(model)
    assert masked_pruning_error(model, image) < 1e-9
    side = 3 * int(model.stride.max())
    model.float()(torch.zeros(1, 3, side, side))  # the stock forward runs at another size


def test_a_v50_layout_prunes_exactly(v50_yaml, image):
    """Focus stem and SPP, the layout of v5.0 checkpoints."""
    model = seeded_model(str(v50_yaml), seed=0)
    assert type(model.model[0]).__name__ == "Focus" and type(model.model[8]).__name__ == "SPP"
    assert masked_pruning_error(model, image) < 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("name", ["yolov5s.pt", "yolov5s-ki67.pt"])
def test_real_checkpoints_prune_exactly(real_weights, name, image):
    """The repository's COCO yolov5s.pt (v6/v7 layout) and a user's 4-class v5.0 model (Focus, SPP), as saved."""
    model = load_model(real_weights[name])
    assert classic.is_classic(model) and type(model).__module__ == "yolov5.models.yolo"
    assert masked_pruning_error(model, image) < 1e-9


def test_an_old_checkpoint_loads_as_attempt_load_makes_it(v50_yaml, tmp_path):
    """A v5.0-era pickle: anchor_grid a buffer, no inplace or recompute_scale_factor, names a list, the classes
    under the repository's own names (models.yolo, models.common)."""
    model = classic.from_yaml(v50_yaml)
    head = model.model[-1]
    del head.anchor_grid
    head.register_buffer("anchor_grid", torch.ones(head.nl, 1, head.na, 1, 1, 2))
    del head.inplace
    for m in model.modules():
        if isinstance(m, torch.nn.Upsample):
            del m.recompute_scale_factor
    model.names = ["a", "b", "c", "d"]
    path = tmp_path / "old.pt"
    torch.save({"model": classic.retarget(model, "models").half(), "epoch": 299}, path)
    loaded = load_model(path)
    assert loaded.names == {0: "a", 1: "b", 2: "c", 3: "d"}
    out = loaded.eval()(torch.zeros(1, 3, 64, 64))
    assert out[0].shape == (1, 3 * (64 + 16 + 4), 9)


def test_prune_saves_what_the_repository_loads(real_weights, tmp_path):
    import yoloslim

    result = yoloslim.prune(real_weights["yolov5s.pt"], ratio=0.3, imgsz=64, project=tmp_path, name="p", verbose=False)
    ckpt = torch.load(result.slim, map_location="cpu", weights_only=False)
    assert type(ckpt["model"]).__module__ == "models.yolo"  # the repository's own names: a clone loads it
    params = sum(p.numel() for p in result.model.parameters())
    with classic.trusted_loads():
        detector = yolov5.load(str(result.slim), device="cpu")  # the package's own loader: AutoShape, fused
    assert type(detector).__name__ == "AutoShape"
    boxes = detector(torch.zeros(64, 64, 3).numpy().astype("uint8") + 114, size=64).xyxy[0]
    assert boxes.shape[1] == 6
    assert 0.4 * 7_235_389 < params < 0.9 * 7_235_389
    assert sum(p.numel() for p in load_model(result.slim).parameters()) == params
    assert type(result.yolo).__name__ == "AutoShape"


@pytest.mark.slow  # its exporter takes seconds; the fast tier checks Ultralytics' ONNX exports (test_export.py)
@pytest.mark.parametrize("cfg", ["yolov5n.yaml", "segment/yolov5n-seg.yaml"])
def test_classic_export_matches_onnxruntime(cfg, tmp_path):
    import yoloslim
    from yoloslim.onnx_export import export_with_report

    model = seeded_model(str(YAMLS / cfg), seed=1)
    pt = yoloslim.prune(model, ratio=0.5, imgsz=64, project=tmp_path, name="p", verbose=False).slim
    onnx, report = export_with_report(pt, imgsz=64, dynamic=True)
    assert onnx.is_file() and max(report["checked"].values()) < 1e-3
    assert len(report["max_diff"]) == 3  # bus.jpg, random, and a second size (dynamic)


def test_classic_half_export_is_refused(tmp_path):
    import yoloslim

    model = seeded_model(str(YAMLS / "yolov5n.yaml"))
    with pytest.raises(YoloslimError, match="only on a GPU"):
        yoloslim.export(model, imgsz=64, half=True, out=tmp_path / "m.onnx", runs=0)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
def test_classic_models_are_validated_like_every_other(tiny_data, tmp_path):
    """Ultralytics' validator through AsUltralytics; per-image matches for the paired interval."""
    from yoloslim.levels import accuracy
    from yoloslim.paired import paired_difference, per_image

    model = seeded_model(str(YAMLS / "yolov5n.yaml"), nc=2)
    pt = classic.save(model, tmp_path / "m.pt")
    scores = accuracy(pt, tiny_data, imgsz=64, batch=4)
    assert set(scores) == {"mAP50", "mAP50-95"} and 0 <= scores["mAP50-95"] <= scores["mAP50"] <= 1
    a, b = per_image(pt, tiny_data, 64, 4), per_image(model, tiny_data, 64, 4)
    assert len(a["tp"]) == 8
    assert paired_difference(a, b)["delta"] == pytest.approx(0, abs=2e-3)  # the same model, saved in fp16


def test_inspect_shows_the_groups(v50_yaml):
    import yoloslim

    table = yoloslim.inspect(str(v50_yaml), verbose=False)
    assert len(table) > 40 and (table.status == "prunable").all()  # only the image and the head's outputs stay
    assert table.group.str.startswith("model.0.conv").any()  # Focus's conv reads the image's four phases


def test_unsupported_classic_blocks_are_named(tmp_path):
    model = seeded_model(str(YAMLS / "hub" / "yolov5s-transformer.yaml"))
    with pytest.raises(YoloslimError, match="C3TR is not supported"):
        graph_of(model)


@pytest.mark.slow  # a fresh interpreter: torch and Ultralytics load again
def test_without_the_package_one_line_says_what_to_install(real_weights):
    code = (
        "import sys; sys.modules['yolov5'] = None\n"
        "from yoloslim.checkpoint import load_model\n"
        f"load_model({str(real_weights['yolov5s.pt'])!r})\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert "YoloslimError" in last and "requirements-yolov5.txt" in last and "yolov5==7.0.14" in last


def test_a_fork_checkpoint_is_named_not_called_corrupt(tmp_path):
    """YOLOv7's checkpoints pickle models.yolo too, with classes the yolov5 package lacks (IDetect, RepConv)."""
    import pickle

    classic.enable()

    class IDetect(torch.nn.Module):
        pass

    IDetect.__module__, IDetect.__qualname__ = "models.yolo", "IDetect"
    import models.yolo

    models.yolo.IDetect = IDetect
    path = tmp_path / "yolov7.pt"
    try:
        torch.save({"model": IDetect()}, path, pickle_module=pickle)
    finally:
        del models.yolo.IDetect
    with pytest.raises(YoloslimError, match="fork of the ultralytics/yolov5 repository"):
        load_model(path)
