"""Classic YOLOv5 training through the repository's own train.py, hooked: the penalty zeros gammas (the saved EMA
too), a pruned model is finetuned at its slim width, classes are mapped by name, and arguments train.py has no
counterpart for are refused in one line before anything is written."""

from pathlib import Path

import pandas as pd
import pytest
import torch

import yoloslim
from yoloslim import YoloslimError, classic
from yoloslim.checkpoint import load_model
from yoloslim.seeded import seeded_model

yolov5 = pytest.importorskip("yolov5")  # installed by make install (requirements-yolov5.txt): CI always has it
YAMLS = Path(yolov5.__file__).parent / "models"
TINY = {"imgsz": 64, "batch": 4, "workers": 0, "plots": False}


@pytest.fixture(scope="module")
def classic_pt(tmp_path_factory):
    path = tmp_path_factory.mktemp("classic") / "yolov5n.pt"
    return classic.save(seeded_model(str(YAMLS / "yolov5n.yaml"), nc=2), path, names="models")


def gammas_at_zero(model: torch.nn.Module) -> float:
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    return float(torch.cat([(bn.weight == 0).float() for bn in bns]).mean())


@pytest.mark.slow
def test_sparse_prune_finetune_keeps_the_slim_width(classic_pt, tiny_data, tmp_path):
    """sparse -> prune -> finetune on a classic model, each by the repository's train.py: the penalty drives the
    pushed share to exact zeros in the saved (EMA) model, and the finetuned model keeps the pruned parameter count."""
    runs = tmp_path / "runs"
    args = {**TINY, "epochs": 5, "optimizer": "SGD", "lr0": 0.05, "project": str(runs), "nbs": 4}
    sparse_pt = yoloslim.sparse(classic_pt, data=tiny_data, sr=300, sr_share=0.5, **args)
    sparsity = pd.read_csv(sparse_pt.parent / "sparsity.csv")
    assert sparsity["sparsity/zeroed"].iloc[-1] >= 0.45 and len(sparsity) == 5
    assert (sparse_pt.parent / "gammas.png").exists() and (sparse_pt.parent / "results.csv").exists()
    assert gammas_at_zero(load_model(sparse_pt)) > 0.3  # exact zeros in the saved model, not only small values

    yoloslim.prune(sparse_pt, ratio=0.45, project=str(runs), name="prune")
    slim = load_model(runs / "prune" / "slim.pt")
    size = sum(p.numel() for p in slim.parameters())
    assert size < 0.75 * sum(p.numel() for p in load_model(classic_pt).parameters())

    best = yoloslim.finetune(runs / "prune" / "slim.pt", data=tiny_data, **{**args, "epochs": 1})
    tuned = load_model(best)
    assert classic.is_classic(tuned) and sum(p.numel() for p in tuned.parameters()) == size
    assert [p.shape for p in tuned.parameters()] == [p.shape for p in slim.parameters()]
    from yolov5.models.experimental import attempt_load  # the repository's own loader runs it

    with classic.trusted_loads():
        loaded = attempt_load(str(best), device="cpu")
    assert loaded(torch.zeros(1, 3, 64, 64))[0].shape[-1] == 5 + 2


def test_class_outputs_are_mapped_by_name():
    """Per anchor: box and objectness rows kept, a class kept moves to its new index, a new one starts fresh."""
    from yoloslim.classic_train import fit_classes

    model = classic.retarget(seeded_model(str(YAMLS / "yolov5n.yaml"), nc=2), "yolov5")
    model.names = {0: "bud", 1: "leaf"}
    head = model.model[-1]
    before = [conv.weight.detach().clone().flatten(1) for conv in head.m]
    fit_classes(model, {0: "leaf", 1: "stem", 2: "bud"})
    assert head.nc == 3 and head.no == 8 and model.names == {0: "leaf", 1: "stem", 2: "bud"}
    for old, conv in zip(before, head.m):
        new = conv.weight.detach().flatten(1)
        assert new.shape[0] == head.na * 8
        for a in range(head.na):
            assert torch.equal(new[a * 8 : a * 8 + 5], old[a * 7 : a * 7 + 5])  # box + objectness
            assert torch.equal(new[a * 8 + 5], old[a * 7 + 6])  # leaf: 1 -> 0
            assert torch.equal(new[a * 8 + 7], old[a * 7 + 5])  # bud: 0 -> 2
    assert model(torch.zeros(1, 3, 64, 64))[0].shape[-1] == 8


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"nbs": 16}, "nbs=16 with batch=4"),
        ({"close_mosaic": 5}, "fixes it at 0"),
        ({"val": False}, "fixes it at True"),
        ({"dfl": 1.0}, "has no counterpart"),
        ({"optimizer": "RAdam"}, "SGD, Adam, AdamW"),
    ],
)
def test_arguments_train_py_cannot_honour_are_refused(classic_pt, tiny_data, tmp_path, given, message):
    with pytest.raises(YoloslimError, match=message):
        yoloslim.train(classic_pt, data=tiny_data, epochs=1, project=str(tmp_path / "runs"), **TINY, **given)
    assert not (tmp_path / "runs").exists()


def test_a_finished_run_is_not_resumed(classic_pt, tiny_data, tmp_path):
    with pytest.raises(YoloslimError, match="finished run"):
        yoloslim.train(classic_pt, data=tiny_data, resume=True, project=str(tmp_path / "runs"), **TINY)


def test_steps_follow_train_pys_accumulation():
    """Told a batch of 64 (nbs=batch), train.py steps every batch; told 8, it ramps its accumulation up to 8 batches
    over its warm-up (at least 100 batches), then steps every 8: the schedule the EMA and the push are fitted to."""
    from yoloslim.classic_train import ClassicRun

    run = ClassicRun(None, epochs=20, start_epoch=0, warmup_epochs=0, sparse=None, save_dir=None)
    run.loader, run.told_batch = range(12), 64
    assert run.steps() == [12] * 20
    run.told_batch = 8
    steps = run.steps()
    assert steps[0] >= 8 and abs(sum(steps[10:]) - 10 * 12 / 8) <= 1


@pytest.mark.slow
def test_an_interrupted_run_resumes_at_its_width(classic_pt, tiny_data, tmp_path):
    """An epoch checkpoint that kept its optimizer (save_period=1) is what an interrupted run leaves: resumed, train.py
    continues it to its epochs at the checkpoint's own width, with the sparse settings it started with."""
    runs = tmp_path / "runs"
    args = {**TINY, "epochs": 2, "save_period": 1, "project": str(runs), "nbs": 4}
    yoloslim.sparse(classic_pt, data=tiny_data, sr=300, sr_share=0.5, optimizer="SGD", lr0=0.05, **args)
    midway = runs / "sparse" / "weights" / "epoch0.pt"
    (runs / "sparse" / "sparsity.csv").unlink()
    last = yoloslim.sparse(midway, data=tiny_data, resume=str(midway), **TINY)
    assert len(pd.read_csv(last.parent / "sparsity.csv")) == 1  # only epoch 2 was trained again
    assert pd.read_csv(last.parent / "sparsity.csv")["sparsity/sr"].iloc[0] in (300, 3)  # its own sr, kept
    assert [p.shape for p in load_model(last).parameters()] == [p.shape for p in load_model(midway).parameters()]


@pytest.mark.slow
def test_compare_puts_a_classic_model_beside_an_ultralytics_one(classic_pt, tiny_data, tmp_path):
    """One compare: a classic yolov5n (its train.py) and Ultralytics' yolov8n (its trainer), each through the whole
    pipeline, in one table; the classic run's records say what its train.py fixed."""
    import json

    from yoloslim.study import compare

    tiny = {"levels": "0.5", "pretrain_epochs": 1, "sparse_epochs": 2, "finetune_epochs": 1, "sr": 300, "export": False}
    tiny.update(imgsz=64, batch=4, nbs=4, workers=0)
    table = compare(models=f"{classic_pt},yolov8n.yaml", data=str(tiny_data), project=str(tmp_path), **tiny)
    assert list(table.model) == ["yolov5n", "yolov5n", "yolov8n", "yolov8n"] and list(table.level) == [0, 0.5] * 2
    for _, part in table.groupby("model"):
        assert part.params.iloc[1] < part.params.iloc[0] and part.gflops.iloc[1] < part.gflops.iloc[0]
    run = tmp_path / "compare" / "yolov5n"
    records = json.loads((run / "stages.json").read_text())
    assert records["baseline.pt"]["close_mosaic"] == 0 and records["baseline.pt"]["nbs"] == 4
    tuned, slim = load_model(run / "slim-0.5-ft.pt"), load_model(run / "prune-0.5" / "slim.pt")
    assert classic.is_classic(tuned) and [p.shape for p in tuned.parameters()] == [p.shape for p in slim.parameters()]


def test_no_warm_up_keeps_the_bias_lr_and_momentum_flat():
    """warmup_epochs=0 (a trained model): train.py still warms up 100 batches; its biases then start at lr0, not at
    warmup_bias_lr=0.1, and the momentum at its own value. optimizer=auto: SGD, at 0.002 for sparse training."""
    from yoloslim.classic_train import hyperparameters

    options = {}
    hyp = hyperparameters("sparse", options, {"warmup_epochs": 0})
    assert options["optimizer"] == "SGD" and hyp["lr0"] == 0.002
    assert hyp["warmup_bias_lr"] == 0.002 and hyp["warmup_momentum"] == hyp["momentum"] == 0.937
    stock = hyperparameters("slim", {"optimizer": "Adam"}, {})
    assert stock["warmup_bias_lr"] == 0.1 and stock["warmup_epochs"] == 3 and stock["lr0"] == 0.01


@pytest.mark.slow
def test_warmup_epochs_0_skips_train_pys_warm_up(classic_pt, tiny_data, tmp_path):
    """train.py warms up 100 batches whatever it is told; at warmup_epochs=0 every step gets its schedule's lr."""
    runs = tmp_path / "runs"
    for warmup, name in ((0, "cold"), (3, "warm")):
        yoloslim.train(classic_pt, data=tiny_data, epochs=2, warmup_epochs=warmup, name=name, project=str(runs), **TINY)
    lr = {n: pd.read_csv(runs / n / "results.csv", skipinitialspace=True)["x/lr1"] for n in ("cold", "warm")}
    assert lr["cold"].iloc[0] == pytest.approx(0.01) and lr["warm"].iloc[0] < 0.001  # epoch 1: scheduled, ramping


def test_a_classic_pipeline_refuses_an_nbs_train_py_cannot_take_before_any_work(classic_pt, tiny_data, tmp_path):
    with pytest.raises(YoloslimError, match="nbs=16 with batch=4"):
        yoloslim.pipeline(model=str(classic_pt), data=str(tiny_data), batch=4, nbs=16, imgsz=64, project=str(tmp_path))
    assert not any(tmp_path.iterdir())
