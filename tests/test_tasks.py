"""Segmentation, pose and oriented-box models (v8 and YOLO11): heads, equivalence on every output, ONNX, the
generated labels, training through each task's stock trainer, and the stock YOLO() on the slim models."""

import numpy as np
import pytest
import torch
from helpers import build, calibrate, raw_outputs, rel_err, tiny_train_args
from test_export import lively

from yoloslim import YoloslimError
from yoloslim.blocks import build_graph
from yoloslim.data import check, synth
from yoloslim.onnx_export import export_with_report
from yoloslim.pruning import prune
from yoloslim.seeded import mask_random_channels, prune_masked

TASK_CONFIGS = [
    "yolov8n-seg.yaml",
    "yolov8s-seg.yaml",
    "yolo11n-seg.yaml",
    "yolo11s-seg.yaml",
    "yolov8n-pose.yaml",
    "yolo11n-pose.yaml",
    "yolov8n-obb.yaml",
    "yolo11n-obb.yaml",
]
TASK_OF = {"seg": "segment", "pose": "pose", "obb": "obb"}


def task(cfg: str) -> str:
    return TASK_OF[cfg.removesuffix(".yaml").rsplit("-", 1)[-1]]


@pytest.fixture(scope="module")
def task_data(tmp_path_factory):
    """Generated data with each task's labels (the same images)."""
    root = tmp_path_factory.mktemp("tasks")
    return {t: synth(root / t, train=16, val=8, imgsz=64, seed=0, task=t) for t in ("segment", "pose", "obb")}


@pytest.mark.parametrize("cfg", [pytest.param(c, marks=pytest.mark.slow) if "s-" in c else c for c in TASK_CONFIGS])
def test_removing_masked_channels_keeps_every_output(cfg, image):
    model = build(cfg)
    graph = build_graph(model)
    head = model.model[-1]
    outputs = {id(seq[-1]) for seq in head.cv4}
    for g in graph.groups():  # the task's output convs stay whole; the convs before them are prunable
        if any(id(c.conv) in outputs for c in g.consumers):
            assert not g.frozen_reasons, g.name
        if any(id(p.conv) in outputs for p in g.producers):
            assert g.frozen_reasons == ["model output (a head's output conv)"]
    if task(cfg) == "segment":
        protos = [g for g in graph.groups() if any(p.conv is head.proto.cv3.conv for p in g.producers)]
        assert protos and "mask prototypes" in protos[0].frozen_reasons[0]
    mask_random_channels(graph, seed=1)
    calibrate(model)
    model.double()
    before = raw_outputs(model, image.double())
    params = sum(p.numel() for p in model.parameters())
    prune_masked(model, graph)
    assert sum(p.numel() for p in model.parameters()) < 0.8 * params
    assert rel_err(raw_outputs(model, image.double()), before) < 1e-9


def test_raw_outputs_hold_each_tasks_own():
    for cfg, key in (("yolov8n-seg.yaml", "proto"), ("yolov8n-pose.yaml", "kpts"), ("yolov8n-obb.yaml", "angle")):
        model = build(cfg).eval()
        _, preds = model(torch.zeros(1, 3, 64, 64))
        assert key in preds
        boxes_and_scores = preds["boxes"][0].numel() + preds["scores"][0].numel()
        assert raw_outputs(model, torch.zeros(1, 3, 64, 64)).shape[1] > boxes_and_scores


@pytest.mark.slow  # the fast tier checks exports in test_export.py
@pytest.mark.parametrize("cfg", ["yolov8n-seg.yaml", "yolo11n-pose.yaml", "yolo11n-obb.yaml"])
def test_slim_export_matches_onnxruntime_on_every_output(cfg, tmp_path):
    import onnx

    pt = prune(lively(cfg, seed=1), ratio=0.5, imgsz=64, project=tmp_path, name="p", verbose=False).slim
    path, report = export_with_report(pt, imgsz=64)
    assert max(report["checked"].values()) < 1e-3
    assert len(onnx.load(str(path)).graph.output) == (2 if task(cfg) == "segment" else 1)  # protos: output1


def test_generated_labels_are_each_tasks(task_data):
    for t, data in task_data.items():
        counts = check(data, task=t)
        assert counts["train"]["objects"] > 20
        rows = [
            ln.split()
            for f in sorted((data.parent / "labels" / "train").glob("*.txt"))
            for ln in f.read_text().splitlines()
        ]
        lengths = {len(r) for r in rows}
        if t == "obb":
            assert lengths == {9}
        elif t == "pose":
            assert lengths == {5 + 3 * 3}
            visible = np.array([[float(r[7]), float(r[10]), float(r[13])] for r in rows])
            assert set(np.unique(visible)) <= {0.0, 2.0} and (visible == 2).mean() > 0.5
        else:
            assert min(lengths) >= 7 and all(n % 2 == 1 for n in lengths)
    images = [sorted((d.parent / "images" / "train").glob("*.jpg")) for d in task_data.values()]
    assert len({tuple(p.read_bytes() for p in paths) for paths in images}) == 1  # the same images for every task


def test_labels_of_another_task_are_refused(task_data):
    with pytest.raises(YoloslimError, match="none of its 16 images is usable"):
        check(task_data["pose"], task="segment")
    with pytest.raises(YoloslimError, match="lacks kpt_shape"):
        check(task_data["obb"], task="pose")
    with pytest.raises(YoloslimError, match="not 9 .class and four corners"):
        check(task_data["segment"], task="obb")


def test_the_wrong_tasks_trainer_is_refused(task_data, tmp_path):
    from ultralytics import YOLO

    from yoloslim.trainer import SlimTrainer

    slim = prune(build("yolov8n-seg.yaml"), ratio=0.3, imgsz=64, project=tmp_path, name="p", verbose=False).slim
    with pytest.raises(YoloslimError, match="use yoloslim.SlimSegmentationTrainer"):
        YOLO(slim).train(data=str(task_data["segment"]), trainer=SlimTrainer, **tiny_train_args(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("cfg", ["yolov8n-seg.yaml", "yolo11n-pose.yaml", "yolov8n-obb.yaml"])
def test_each_task_trains_sparse_prunes_finetunes_and_runs_in_stock_yolo(cfg, task_data, tmp_path):
    import pandas as pd
    from ultralytics import YOLO

    from yoloslim.levels import accuracy
    from yoloslim.trainer import finetune, sparse

    data = task_data[task(cfg)]
    out = sparse(cfg, data, sr=5.0, **tiny_train_args(tmp_path, name="sparse", lr0=0.1, optimizer="SGD"))
    assert pd.read_csv(out.parent / "results.csv")["sparsity/mean_gamma"].iloc[-1] < 0.99
    result = prune(out, ratio=0.4, imgsz=64, project=tmp_path, name="prune", verbose=False)
    n_slim = sum(p.numel() for p in result.model.parameters())
    best = finetune(result.slim, data, **tiny_train_args(tmp_path, name="finetune"))
    yolo = YOLO(best)
    assert yolo.task == task(cfg) and sum(p.numel() for p in yolo.model.parameters()) == n_slim
    from ultralytics.utils import ASSETS

    assert len(yolo.predict(ASSETS / "bus.jpg", imgsz=64, verbose=False)) == 1
    metrics = yolo.val(data=str(data), imgsz=64, batch=4, plots=False, verbose=False)
    assert "fitness" in metrics.results_dict
    scores = accuracy(best, data, 64, 4)
    assert set(scores) == ({"mAP50", "mAP50-95"} | ({"box mAP50", "box mAP50-95"} if task(cfg) != "obb" else set()))
    onnx = YOLO(best).export(format="onnx", imgsz=64)
    assert str(onnx).endswith(".onnx")


def test_a_pose_model_on_other_keypoints_is_refused(task_data, tmp_path):
    from yoloslim.trainer import finetune

    slim = prune(build("yolov8n-pose.yaml"), ratio=0.3, imgsz=64, project=tmp_path, name="p", verbose=False).slim
    with pytest.raises(YoloslimError, match=r"kpt_shape \[17, 3\], the data's \[3, 3\]"):
        finetune(slim, task_data["pose"], **tiny_train_args(tmp_path))
