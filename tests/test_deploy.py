"""export format=...: each format that runs here, written by the stock exporter from a pruned model of each task,
loaded as Ultralytics loads it and checked against PyTorch; INT8 checked by its mAP; refusals in one line."""

import hashlib
from pathlib import Path

import pytest
import torch

import yoloslim
from yoloslim import YoloslimError
from yoloslim.deploy import ELSEWHERE, FORMATS
from yoloslim.pruning import prune
from yoloslim.seeded import seeded_model

pytest.importorskip("openvino")  # requirements-export.txt, installed by make install: CI always has them


def slim_model(cfg: str, folder: Path) -> Path:
    """A pruned slim.pt (ratio 0.5) with distinct random gammas and BN statistics of real-looking input."""
    batch = [torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))]
    model = seeded_model(cfg, 0, calibration=batch)
    prune(model, ratio=0.5, project=folder, name="slim", verbose=False)
    return folder / "slim" / "slim.pt"


@pytest.fixture(scope="module")
def slim(tmp_path_factory):
    return slim_model("yolov8n.yaml", tmp_path_factory.mktemp("deploy"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow  # each format's runtime loads in seconds
@pytest.mark.parametrize("format", list(FORMATS))
def test_every_format_predicts_what_the_pt_predicts(slim, format):
    from yoloslim.deploy import export_deployed

    before = sha(slim)
    dest, report = export_deployed(slim, format, 64, False, False, None, 4, None, verbose=False)
    assert dest.exists() and dest.parent == slim.parent and dest.name.startswith("slim")
    assert report["max_error"] <= report["tolerance"] == 1e-3
    assert sha(slim) == before and not list(slim.parent.glob(".*export*"))  # input untouched, no leftovers


@pytest.mark.slow
@pytest.mark.parametrize("cfg", ["yolov8n-seg.yaml", "yolov8n-pose.yaml", "yolov8n-obb.yaml"])
@pytest.mark.parametrize("format", ["openvino", "ncnn", "torchscript"])
def test_every_task_exports_checked(cfg, format, tmp_path):
    from yoloslim.deploy import export_deployed

    dest, report = export_deployed(slim_model(cfg, tmp_path), format, 64, False, False, None, 4, None, False)
    assert dest.exists() and report["max_error"] <= 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("format", ["openvino", "onnx"])
def test_int8_is_checked_by_its_accuracy(slim, tiny_data, tmp_path, format):
    out = tmp_path / ("int8_openvino_model" if format == "openvino" else "int8.onnx")
    dest = yoloslim.export(slim, format=format, int8=True, data=str(tiny_data), imgsz=64, out=out)
    assert dest == out and dest.exists()
    from ultralytics import YOLO

    results = YOLO(str(dest), task="detect").predict(str(tiny_data.parent / "images" / "val"), imgsz=64)
    assert len(results) == 8


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"format": "engine"}, "only on an NVIDIA GPU"),
        ({"format": "coreml"}, "only on macOS"),
        ({"format": "foo"}, "is not an export format"),
        ({"format": "openvino", "int8": True}, "give data="),
        ({"format": "ncnn", "int8": True, "data": "x.yaml"}, "not ncnn's"),
    ],
)
def test_what_cannot_be_exported_is_refused(slim, given, message):
    with pytest.raises(YoloslimError, match=message):
        yoloslim.export(slim, imgsz=64, **given)


def test_the_formats_that_do_not_run_here_are_each_named_with_why():
    from ultralytics.engine.exporter import export_formats

    stock = set(export_formats()["Argument"]) - {"-"}  # "-": the .pt itself
    assert stock <= set(FORMATS) | set(ELSEWHERE), stock - set(FORMATS) - set(ELSEWHERE)


@pytest.mark.slow
@pytest.mark.parametrize(("runtime", "precision"), [("openvino", "fp32"), ("onnxruntime", "int8")])
def test_latency_budgets_time_the_runtime_asked(tiny_data, runtime, precision, caplog):
    """speedup= on OpenVINO or ONNX Runtime INT8 searches levels timed there (whether it reaches the speedup is the
    machine's: benchmarks measure that, not tests)."""
    from yoloslim.deploy import latency_on

    model = seeded_model("yolov8n.yaml", 0)
    with caplog.at_level("INFO", logger="yoloslim"):
        result = yoloslim.prune(
            model, speedup=1.2, imgsz=64, runtime=runtime, precision=precision, data=str(tiny_data), save=False
        )
    assert 0 < result.plan.removed < 0.8 * result.plan.prunable
    assert f"ms on {runtime} {precision}" in caplog.text
    assert 0 < latency_on(result.model, 64, runtime, precision, data=str(tiny_data), runs=3) < 1000
