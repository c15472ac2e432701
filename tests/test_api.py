"""The Python API: the verbs at the package top, YOLO objects in and out, the stock trainer hook, logging."""

import logging
import os
import subprocess
import sys

import pytest
import torch
from helpers import build, tiny_train_args

import yoloslim

pytestmark = pytest.mark.slow  # real trainings


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_the_verbs_are_functions_at_the_top():
    for name in (
        "prune",
        "inspect",
        "train",
        "sparse",
        "finetune",
        "export",
        "pipeline",
        "compare",
        "check_data",
        "synth_data",
        "convert_data",
        "tile_data",
        "SlimTrainer",
        "SparseTrainer",
    ):
        assert name in yoloslim.__all__ and callable(getattr(yoloslim, name)), name
        assert getattr(yoloslim, name).__doc__, name
    from yoloslim.cli import load_verbs

    assert set(load_verbs().values()) >= {yoloslim.prune, yoloslim.export, yoloslim.compare}  # the CLI calls these


def test_yolo_objects_in_and_out(tiny_data, tmp_path):
    """prune takes a YOLO and gives one back; finetune takes it in memory and leaves the caller's alone."""
    from ultralytics import YOLO

    from yoloslim.checkpoint import save_checkpoint

    source = YOLO(str(save_checkpoint(build("yolov8n.yaml", nc=2), tmp_path / "trained.pt")))
    before = {k: v.clone() for k, v in source.model.state_dict().items()}
    result = yoloslim.prune(source, ratio=0.5, project=tmp_path, name="p", verbose=False)
    slim = result.yolo
    assert isinstance(slim, YOLO) and result.slim.exists() and result.plan.removed > 0
    assert n_params(slim.model) == n_params(result.model) < n_params(source.model)
    assert slim.predict(torch.rand(1, 3, 64, 64), imgsz=64, verbose=False)  # stock predict works

    best = yoloslim.finetune(slim, data=tiny_data, **tiny_train_args(tmp_path, name="ft"))
    assert n_params(YOLO(best).model) == n_params(result.model)
    assert all(torch.equal(v, source.model.state_dict()[k]) for k, v in before.items())  # the input is unchanged
    unsaved = yoloslim.prune(source, ratio=0.5, save=False, verbose=False)
    assert unsaved.slim is None and n_params(unsaved.yolo.model) == n_params(result.model)


def test_stock_train_with_yoloslims_trainers(tiny_data, tmp_path):
    """YOLO(slim).train(trainer=SlimTrainer) keeps the slim width; SparseTrainer.using() carries sparse settings
    past Ultralytics' cfg check, into the run's args and its DDP launch file."""
    from ultralytics import YOLO
    from ultralytics.utils.dist import generate_ddp_file
    from ultralytics.utils.patches import torch_load

    result = yoloslim.prune(build("yolov8n.yaml", nc=2), ratio=0.5, project=tmp_path, name="p", verbose=False)
    trainer = yoloslim.SparseTrainer.using(sr=2.0, penalty="lowest")
    model = YOLO(result.slim)
    model.train(data=str(tiny_data), trainer=trainer, **tiny_train_args(tmp_path, name="sparse"))
    best = tmp_path / "sparse" / "weights" / "best.pt"
    assert n_params(YOLO(best).model) == n_params(result.model)
    args = model.trainer.args  # (the final best.pt/last.pt keep Ultralytics' own keys only)
    assert (args.sr, args.penalty, args.sr_share) == (2.0, "lowest", 0.42)
    assert (tmp_path / "sparse" / "gammas.csv").exists()

    launch = generate_ddp_file(
        trainer(overrides={"model": str(result.slim), "data": str(tiny_data), **tiny_train_args(tmp_path, name="ddp")})
    )
    state = torch_load(launch.replace(".py", ".pt"), map_location="cpu")
    assert issubclass(state["trainer"], yoloslim.SparseTrainer) and state["args"]["sr"] == 2.0
    with pytest.raises(yoloslim.YoloslimError, match="not srr"):
        yoloslim.SparseTrainer.using(srr=1)


def test_logging_is_standard_and_can_be_quieted(capsys):
    logger = logging.getLogger("yoloslim")
    yoloslim.inspect(build("yolov8n.yaml", nc=2))
    assert "prunable groups" in capsys.readouterr().out
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yoloslim.inspect(build("yolov8n.yaml", nc=2))
        assert capsys.readouterr().out == ""
    finally:
        logger.setLevel(level)
    from yoloslim.cli import main

    assert main(["inspect", "model=yolov8n.yaml", "verbose=False"]) == 0
    assert capsys.readouterr().out == "" and logger.level == level  # quiet for that run only


def test_sparsity_metrics_reach_tensorboard(tiny_data, tmp_path):
    """Ultralytics' TensorBoard integration (off under pytest, so in a child process) logs the sparsity."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = tiny_train_args(tmp_path, name="tb", epochs=2)
    code = (
        "from ultralytics.utils import SETTINGS\nSETTINGS.update(tensorboard=True)\nimport yoloslim\n"
        f"yoloslim.sparse('yolov8n.yaml', data={str(tiny_data)!r}, **{args!r})"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(YOLO_CONFIG_DIR=str(tmp_path / "config"), YOLO_OFFLINE="1")  # the user's settings stay untouched
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"sparsity/mean_gamma", "sparsity/gamma<1e-2"} <= set(tags), tags
    assert len(events.Scalars("sparsity/mean_gamma")) == 2
