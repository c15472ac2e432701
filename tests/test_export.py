"""ONNX export: stock Ultralytics exporter, checked against onnxruntime; tiny real models at imgsz 64-96."""

import hashlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import build, fast_only

from yoloslim import YoloslimError
from yoloslim.latency import ort_latency
from yoloslim.onnx_check import bus_image, check_onnx, ort_session
from yoloslim.onnx_export import export, export_with_report
from yoloslim.pruning import prune

ROOT = Path(__file__).resolve().parents[1]


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def lively(cfg, seed=0):
    """build()'s distinct gammas, BN statistics measured on one batch of four random images."""
    from yoloslim.seeded import seeded_model

    return seeded_model(
        cfg, seed, calibration=[torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(seed))]
    )


@pytest.fixture(scope="module")
def slim(tmp_path_factory):
    """A pruned yolov8n slim.pt (ratio 0.5, distinct random gammas, input-sensitive outputs)."""
    return prune(
        lively("yolov8n.yaml"), ratio=0.5, project=tmp_path_factory.mktemp("p"), name="v8n", verbose=False
    ).slim


def test_outputs_depend_on_the_input(slim):
    """Guards the other tests: a model whose output ignores its input would pass any ONNX check."""
    a = torch_export_output(slim, torch.zeros(1, 3, 64, 64))
    b = torch_export_output(slim, bus_image(64))
    assert np.abs(a - b)[:, :4].max() > 1.0  # pixels


def torch_export_output(pt, x):
    """What the ONNX graph should output, computed here without yoloslim.onnx_export: Detect in export mode."""
    from ultralytics import YOLO
    from ultralytics.nn.modules import Detect

    model = YOLO(str(pt)).model.float().eval()
    for m in model.modules():
        if isinstance(m, Detect):
            m.export, m.format, m.dynamic = True, "onnx", True
    with torch.no_grad():
        return model(x).numpy()


@pytest.mark.parametrize("cfg", fast_only("yolov5n.yaml", ["yolo11n.yaml", "yolov5n.yaml"]))
def test_pruned_export_matches_onnxruntime(tmp_path, cfg):
    pt = prune(lively(cfg, seed=1), ratio=0.5, project=tmp_path, name="p", verbose=False).slim
    digest = sha(pt)
    before = set(pt.parent.iterdir())
    onnx, report = export_with_report(pt, imgsz=64)
    assert onnx == pt.with_suffix(".onnx") and onnx.is_file()
    assert sha(pt) == digest and set(pt.parent.iterdir()) == before | {onnx}  # input untouched, no leftovers
    assert set(report["max_diff"]) == {"bus.jpg", "random"} and max(report["max_diff"].values()) < 1e-3
    assert max(report["checked"].values()) < 1e-3
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    got = ort_session(onnx).run(None, {"images": x.numpy()})[0]
    want = torch_export_output(pt, x)
    nc = 80
    assert got.shape == want.shape == (1, 4 + nc, 64 + 16 + 4)  # anchors of the 8/16/32 strides at 64 px
    assert np.abs(got - want).max() < 1e-3


def test_export_slim_prints_diff_and_predicts(slim, capsys):
    digest = sha(slim)
    onnx = export(slim, imgsz=64, runs=3)
    out = capsys.readouterr().out
    assert "max |diff|" in out and "latency" in out and str(onnx) in out
    assert sha(slim) == digest
    from ultralytics import YOLO
    from ultralytics.utils import ASSETS

    results = YOLO(str(onnx), task="detect").predict(ASSETS / "bus.jpg", imgsz=64, verbose=False)
    assert len(results) == 1 and results[0].orig_shape == (1080, 810) and results[0].boxes is not None


def test_check_catches_a_wrong_model(slim, tmp_path, monkeypatch):
    """The check itself can fail, and a failed export writes nothing."""
    import yoloslim.onnx_export
    from yoloslim.checkpoint import load_model

    onnx = export(slim, imgsz=64, out=tmp_path / "s.onnx", runs=0, verbose=False)
    model = load_model(slim)
    with torch.no_grad():
        model.model[0].bn.bias[0] += 0.1  # one channel of the first layer: boxes move by ~0.03 strides
    with pytest.raises(YoloslimError, match="s.onnx: onnxruntime differs from PyTorch on bus.jpg: boxes by"):
        check_onnx(onnx, model, 64)

    other = export(lively("yolov8n.yaml", seed=5), imgsz=64, out=tmp_path / "other.onnx", runs=0, verbose=False)

    def wrong_exporter(pt, **kwargs):  # as if Ultralytics had exported some other model
        return Path(shutil.copyfile(other, pt.with_suffix(".onnx")))

    monkeypatch.setattr(yoloslim.onnx_export, "ultralytics_onnx", wrong_exporter)
    with pytest.raises(YoloslimError, match="x.onnx was not written"):
        export(slim, imgsz=64, out=tmp_path / "x.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.onnx", "s.onnx"]


@pytest.mark.slow
def test_dynamic_export_runs_at_two_sizes(slim, tmp_path):
    onnx, report = export_with_report(slim, imgsz=64, dynamic=True, out=tmp_path / "dyn.onnx")
    assert len(report["max_diff"]) == 3 and max(report["max_diff"].values()) < 1e-3  # incl. a non-square size
    session = ort_session(onnx)
    for h, w in ((64, 64), (96, 128)):
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h))
        got = session.run(None, {"images": x.numpy()})[0]
        anchors = sum((h // s) * (w // s) for s in (8, 16, 32))
        assert got.shape == (1, 84, anchors)
        assert np.abs(got - torch_export_output(slim, x)).max() < 1e-3


def test_module_and_yaml_inputs_write_no_checkpoint(tmp_path):
    onnx = export(build("yolov8n.yaml"), imgsz=64, out=tmp_path / "m.onnx", runs=0, verbose=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # the temporary .pt is gone
    assert ort_session(onnx).get_inputs()[0].shape == [1, 3, 64, 64]
    with pytest.raises(YoloslimError, match="must be the path of a .onnx"):
        export("yolov8n.yaml", imgsz=64, out=tmp_path / "m.pt")
    with pytest.raises(YoloslimError, match="not a multiple of the model's stride 32"):
        export("yolov8n.yaml", imgsz=100, out=tmp_path / "x.onnx")


def test_corrupt_checkpoint_is_one_clear_error(slim, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(slim.read_bytes()[:50_000])
    with pytest.raises(YoloslimError, match="corrupt or truncated"):
        export(bad, imgsz=64)
    assert not bad.with_suffix(".onnx").exists() and sorted(tmp_path.iterdir()) == [bad]


def test_ort_latency_and_letterboxed_image(slim, tmp_path):
    onnx = export(slim, imgsz=64, out=tmp_path / "l.onnx", runs=0, verbose=False)
    lat = ort_latency(onnx, 64, runs=5, warmup=1)
    assert 0 < lat["min_ms"] <= lat["median_ms"] <= lat["p90_ms"] and lat["runs"] == 5 and lat["threads"] == 1
    x = bus_image(64)
    assert x.shape == (1, 3, 64, 64) and x.dtype == torch.float32 and 0 <= x.min() < x.max() <= 1
    assert torch.allclose(x[0, :, 32, 0], torch.full((3,), 114 / 255))  # grey band beside the (portrait) bus
    assert not torch.allclose(x[0, :, 32, 32], torch.full((3,), 114 / 255))
    with pytest.raises(YoloslimError, match="does not exist"):
        ort_latency(tmp_path / "missing.onnx", 64)


@pytest.mark.slow  # a child process; the in-process export tests cover the same code
def test_cli_export(slim, tmp_path):
    out = tmp_path / "cli.onnx"
    run = subprocess.run(
        [sys.executable, "-m", "yoloslim.cli", "export", f"model={slim}", "imgsz=64", f"out={out}", "runs=2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "max |diff|" in run.stdout and out.is_file()
    missing = subprocess.run(
        [sys.executable, "-m", "yoloslim.cli", "export", f"model={tmp_path / 'nope.pt'}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "does not exist" in missing.stderr


@pytest.mark.slow
def test_bench_latency_script(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_latency", ROOT / "scripts" / "bench_latency.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    csv = tmp_path / "bench.csv"
    table = bench.main(
        [
            "--models",
            "yolov8n.yaml",
            "--ratios",
            "0",
            "0.5",
            "--imgsz",
            "64",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--out",
            str(csv),
        ]
    )
    assert list(table.level) == ["unpruned", "0.5"] and csv.is_file()
    slim_row = table.iloc[1]
    assert slim_row.params < table.iloc[0].params and slim_row.gflops_ratio > 1.5
    assert slim_row.max_diff < 1e-3 and slim_row.max_diff_checked < 1e-3 and slim_row.median_ms > 0
    assert "| model" in capsys.readouterr().out
