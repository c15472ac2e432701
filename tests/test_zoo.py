"""The rest of the detection zoo (yolov3-tiny/-spp, v6, v8-p6, ghost, v9, v10, YOLO12): equivalence, ONNX, training.

Equivalence runs in float64: over 100+ layers float32 rounding alone reaches ~1e-4 (yolov8n-ghost-p2), so only
float64 separates a surgery error from rounding.
"""

from pathlib import Path

import pytest
import torch
from helpers import build, calibrate, masked_pruning_error, raw_outputs, rel_err, tiny_train_args
from test_export import lively

from yoloslim import YoloslimError
from yoloslim.blocks import build_graph
from yoloslim.checkpoint import load_model
from yoloslim.onnx_export import export_with_report
from yoloslim.pruning import prune
from yoloslim.seeded import mask_random_channels, prune_masked

ZOO = [
    "yolov3-tiny.yaml",
    "yolov3-spp.yaml",
    "yolov6n.yaml",
    "yolov8n-p6.yaml",
    "yolov8n-ghost.yaml",
    "yolov8n-ghost-p2.yaml",
    "yolov8n-ghost-p6.yaml",
    "yolov9t.yaml",
    "yolov9s.yaml",
    "yolov9m.yaml",
    "yolov9c.yaml",
    "yolov9e.yaml",
    "yolov10n.yaml",
    "yolov10s.yaml",
    "yolo12n.yaml",
]
HEAVY = {"yolov3-spp.yaml", "yolov9m.yaml", "yolov9c.yaml", "yolov9e.yaml"}  # 20M-105M parameters
# the fast tier proves each family at its smallest scale; the s scales (the same blocks, wider) run in 'make test'
SECOND_SCALE = {"yolov9s.yaml", "yolov10s.yaml"}
ONE_PER_FAMILY = [  # yolov3-spp (105M parameters) left out: its one new block, SPP, is pools and a concat
    "yolov3-tiny.yaml",
    "yolov6n.yaml",
    "yolov8n-p6.yaml",
    "yolov8n-ghost.yaml",
    "yolov9t.yaml",
    "yolov10n.yaml",
    "yolo12n.yaml",
]


@pytest.mark.parametrize(
    "cfg", [pytest.param(c, marks=pytest.mark.slow) if c in HEAVY | SECOND_SCALE else c for c in ZOO]
)
def test_removing_masked_channels_keeps_outputs(cfg, image):
    model = build(cfg)
    assert masked_pruning_error(model, image) < 1e-9
    side = 3 * int(model.stride.max())
    model.float()(torch.zeros(1, 3, side, side))  # the stock forward runs at another size


@pytest.mark.slow  # the fast tier checks exports in test_export.py
@pytest.mark.parametrize("cfg", [c for c in ZOO if c not in HEAVY])
def test_pruned_export_matches_onnxruntime(cfg, tmp_path):
    """The heavy configs' exports are checked by scripts/bench_prune.py (docs/results/zoo), to keep make test short."""
    pt = prune(lively(cfg, seed=1), ratio=0.5, imgsz=64, project=tmp_path, name="p", verbose=False).slim
    onnx, report = export_with_report(pt, imgsz=64)
    assert onnx.is_file() and max(report["checked"].values()) < 1e-3  # boxes in strides, scores as they are


def test_area_attention_keeps_its_heads_and_frees_the_rest():
    graph = build_graph(build("yolo12n.yaml"))
    frozen = [g for g in graph.groups() if g.frozen_reasons]
    assert frozen and all(
        "model input" in g.frozen_reasons[0]
        or "attention" in g.frozen_reasons[0]
        or "model output" in g.frozen_reasons[0]
        for g in frozen
    )
    mlp_hidden = [g for g in graph.groups() if ".mlp.0.conv" in g.name]
    assert mlp_hidden and not any(g.frozen_reasons for g in mlp_hidden)


def test_cblinear_outputs_have_no_gamma_and_stay():
    graph = build_graph(build("yolov9e.yaml"))
    fused = [g for g in graph.groups() if any("CBLinear" in r for r in g.frozen_reasons)]
    assert len(fused) == 8  # the five CBFuse sums: three of them sum onto an ADown output, two groups each
    assert all(not g.frozen_reasons for g in graph.groups() if "cv4" in g.name)  # the ELAN outputs stay prunable


def test_transposed_conv_keeps_both_sides():
    graph = build_graph(build("yolov6n.yaml"))
    reasons = [r for g in graph.groups() for r in g.frozen_reasons if "ConvTranspose2d" in r]
    assert len(reasons) == 4  # two layers: what each reads and what each writes


@pytest.mark.parametrize(
    "cfg, model_class",
    [
        ("yolov8n-world.yaml", "WorldModel"),
        ("yolov8n-worldv2.yaml", "WorldModel"),
        ("yoloe-11n.yaml", "YOLOEModel"),
        ("yoloe-26n-seg.yaml", "YOLOESegModel"),
        ("rtdetr-l.yaml", "RTDETRDetectionModel"),
        ("yolo26n-obb.yaml", "OBBModel"),  # OBB26: YOLO26's task heads are not traced yet
        ("yolo11n-cls.yaml", "ClassificationModel"),
    ],
)
def test_other_models_are_named_from_yaml_and_pt(cfg, model_class, tmp_path):
    with pytest.raises(
        YoloslimError,
        match=f"is an? {model_class} \\(.*\\); yoloslim prunes YOLO detect, segment, pose and obb models, not this one",
    ):
        load_model(cfg)
    if model_class in ("WorldModel", "RTDETRDetectionModel", "OBBModel", "ClassificationModel"):
        from ultralytics.nn import tasks

        model = getattr(tasks, model_class)(cfg, verbose=False)
        torch.save({"model": model}, tmp_path / "m.pt")
        with pytest.raises(YoloslimError, match=f"m.pt is an? {model_class} "):
            load_model(tmp_path / "m.pt")


def test_articles():
    from yoloslim.checkpoint import article

    assert [article(w) for w in ("OBBModel", "PoseModel", "RTDETRDetectionModel", "YOLOEModel")] == [
        "an",
        "a",
        "an",
        "a",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("cfg", ONE_PER_FAMILY)
def test_sparse_training_and_finetune(cfg, tiny_data, tmp_path):
    """One epoch each: the penalty reaches the family's gammas, and the finetune keeps the slim width."""
    import pandas as pd
    from ultralytics import YOLO

    from yoloslim.trainer import finetune, sparse

    out = sparse(cfg, tiny_data, sr=5.0, **tiny_train_args(tmp_path, name="sparse", lr0=0.1, optimizer="SGD"))
    assert pd.read_csv(out.parent / "results.csv")["sparsity/mean_gamma"].iloc[-1] < 0.99  # they start at 1
    result = prune(out, ratio=0.3, imgsz=64, project=tmp_path, name="prune", verbose=False)
    n_slim = sum(p.numel() for p in result.model.parameters())
    best = finetune(result.slim, tiny_data, **tiny_train_args(tmp_path, name="finetune"))
    assert sum(p.numel() for p in YOLO(best).model.parameters()) == n_slim


def test_a2c2f_residual_scale_is_sliced_with_its_channels(tmp_path, image):
    """yolo12 l/x add x + gamma * cv2(...) with a per-channel gamma; built here at the n width."""
    from ultralytics.cfg import DEFAULT_CFG_PATH
    from ultralytics.nn.modules.block import A2C2f

    stock = (Path(DEFAULT_CFG_PATH).parent / "models" / "12" / "yolo12.yaml").read_text()
    cfg = tmp_path / "yolo12n-residual.yaml"
    cfg.write_text(stock.replace("A2C2f, [512, True, 4]]", "A2C2f, [512, True, 4, True, 1.2]]"))
    model = build(str(cfg))
    residual = [m for m in model.modules() if isinstance(m, A2C2f) and m.gamma is not None]
    assert residual
    graph = build_graph(model)
    mask_random_channels(graph, seed=1)
    calibrate(model)
    model.double()
    before = raw_outputs(model, image.double())
    widths = [m.gamma.shape[0] for m in residual]
    prune_masked(model, graph)
    assert all(m.gamma.shape[0] == m.cv2.conv.out_channels == m.cv1.conv.in_channels for m in residual)
    assert all(m.gamma.shape[0] < width for m, width in zip(residual, widths))
    assert rel_err(raw_outputs(model, image.double()), before) < 1e-9
