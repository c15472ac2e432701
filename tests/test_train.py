"""Training through the stock Ultralytics trainer: plain, offline, and sparse (a penalty on prunable gammas)."""

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import build, tiny_train_args

from yoloslim import YoloslimError
from yoloslim.sparsity import sparsity_penalty
from yoloslim.trainer import SparseTrainer, check_sparse_settings, sparse

pytestmark = pytest.mark.slow  # real trainings


def test_offline_train_validate_and_plot(tiny_data, tmp_path):
    """With every socket connection refused: build from yaml, train one epoch, validate, plot."""
    script = f"""
import socket
def refuse(*a, **k):
    raise OSError("network blocked by test")
socket.socket.connect = refuse
socket.create_connection = refuse
from yoloslim.trainer import train
from ultralytics import YOLO

best = train("yolov8n.yaml", r"{tiny_data}", **{tiny_train_args(tmp_path, plots=True)!r})
metrics = YOLO(best).val(data=r"{tiny_data}", imgsz=64, batch=4, plots=True, project=r"{tmp_path}", name="val")
print("MAP", metrics.box.map)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0 and "MAP" in run.stdout, run.stderr[-3000:]
    assert (tmp_path / "train" / "results.png").is_file()
    assert list((tmp_path / "val").glob("*.png"))


def test_a_relative_project_is_relative_to_the_working_folder(tiny_data, tmp_path, monkeypatch):
    from yoloslim.trainer import train

    monkeypatch.chdir(tmp_path)
    best = train("yolov8n.yaml", tiny_data, **{**tiny_train_args(tmp_path), "project": "runs/mine", "name": "plain"})
    assert best.resolve().is_relative_to(tmp_path / "runs" / "mine" / "plain")  # where the pipeline looks for last.pt


def reference_penalty(gammas, groups, kind, share, max_group_share=0.8):
    """The penalties as written in the README, per unit of sr: L1 over the prunable BNs' gammas, or L1 over the
    weakest share of all unfrozen groups' channels, each ranked as the pruner ranks it relative to its group's
    mean (lowest) or total (wide), taking at most max_group_share of any group."""
    if kind == "l1":
        return sum(g.abs().sum() for g in gammas)
    ranked = []  # (relative strength, group, channel), a group's strongest left out
    for group in groups:
        strength = group.importance()
        order = strength.argsort().tolist()[: int(max_group_share * group.size)]
        scale = strength.sum() if kind == "wide" else strength.mean()
        ranked += [(float(strength[j] / scale), group, j) for j in order]
    ranked.sort(key=lambda item: item[0])
    total = 0
    for _, group, j in ranked[: round(share * sum(g.size for g in groups))]:
        for p in group.producers:
            if p.bn is not None:
                total = total + p.bn.weight[p.offset + j].abs()
    return total


def test_lowest_penalty_pushes_the_channels_weakest_within_their_group():
    layer = torch.tensor([1.0, 0.9, 0.2, -0.1], requires_grad=True)
    (lowest,) = torch.autograd.grad(sparsity_penalty([layer], "lowest", share=0.5), layer)
    (l1,) = torch.autograd.grad(sparsity_penalty([layer], "l1", share=0.5), layer)
    assert lowest.tolist() == [0.0, 0.0, 1.0, -1.0]  # the strong channels are left to the loss
    assert l1.tolist() == [1.0, 1.0, 1.0, -1.0]  # L1 shrinks the whole layer

    # ranked within their group: a layer of small but even gammas is not the one that loses channels
    spread, even = torch.tensor([1.0, 0.9, 0.2, 0.1], requires_grad=True), torch.full((4,), 0.05, requires_grad=True)
    grads = torch.autograd.grad(sparsity_penalty([spread, even], "lowest", share=0.25), [spread, even])
    assert grads[0].tolist() == [0.0, 0.0, 1.0, 1.0] and grads[1].tolist() == [0.0] * 4

    # no group loses more than 80% of its channels, however weak: the push goes elsewhere
    weak, strong = torch.tensor([1.0, 0.01, 0.01, 0.01, 0.01], requires_grad=True), torch.ones(5, requires_grad=True)
    grads = torch.autograd.grad(sparsity_penalty([weak, strong], "lowest", share=0.9), [weak, strong])
    assert grads[0].tolist() == [0.0, 1.0, 1.0, 1.0, 1.0] and grads[1].sum() == 4

    # two BNs writing one channel space (a residual add): a channel is weak when it is weak in both
    a = torch.tensor([1.0, 0.1, 0.5, 0.2], requires_grad=True)
    b = torch.tensor([7.0, 0.05, 2.0, 0.3, 9.0], requires_grad=True)  # channels 1..4 of b are the group's
    grads = torch.autograd.grad(sparsity_penalty([a, b], "lowest", 0.5, groups=[[(0, 0, 4), (1, 1, 4)]]), [a, b])
    assert grads[0].tolist() == [1.0, 0.0, 1.0, 0.0] and grads[1].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]

    fresh = torch.ones(10, requires_grad=True)  # a model from yaml: all gammas equal
    (grad,) = torch.autograd.grad(sparsity_penalty([fresh], "lowest", share=0.4), fresh)
    assert grad.sum() == 4  # ties still give the share something to push


def test_wide_penalty_takes_channels_from_wide_groups_first():
    narrow = torch.tensor([1.0, 0.8, 0.6, 0.4], requires_grad=True)
    wide = torch.tensor([1.0, 0.8, 0.6, 0.4] * 4, requires_grad=True)  # the same gammas, four times as many
    grads = torch.autograd.grad(sparsity_penalty([narrow, wide], "lowest", share=0.25), [narrow, wide])
    assert grads[0].sum() == 1 and grads[1].sum() == 4  # lowest: every group alike
    grads = torch.autograd.grad(sparsity_penalty([narrow, wide], "wide", share=0.25), [narrow, wide])
    assert grads[0].sum() == 0 and grads[1].sum() == 5  # wide: the wide group first, weakest channels first
    assert grads[1][3::4].tolist() == [1.0] * 4 and grads[1][2::4].sum() == 1

    # a channel that is weak for its narrow group still goes before a fair one of a wide group
    narrow = torch.tensor([1.0, 1.0, 1.0, 0.01], requires_grad=True)
    wide = torch.ones(16, requires_grad=True)
    grads = torch.autograd.grad(sparsity_penalty([narrow, wide], "wide", share=0.05), [narrow, wide])
    assert grads[0].tolist() == [0.0, 0.0, 0.0, 1.0] and grads[1].sum() == 0


def test_auto_sr_follows_a_line_to_zero():
    """sr=auto pushes harder while the pushed channels' mean |gamma| is above the line from its start to zero at
    ZERO_AT of the push phase, softer below it, within 1e-3..1e3."""
    from yoloslim.sparsity import RATE, ZERO_AT, calibrated_sr

    assert calibrated_sr(1.0, 0.9, 1.0, 0.0) == pytest.approx(1 / RATE)  # below the line (1.0 at the start)
    assert calibrated_sr(1.0, 0.9, 1.0, 0.5) == pytest.approx(RATE)  # the line is at 1 - 0.5 / ZERO_AT by then
    assert calibrated_sr(1.0, 1e-4, 1.0, ZERO_AT) == pytest.approx(RATE)  # at zero_at the line is 0: push on
    assert calibrated_sr(1e3, 1.0, 1.0, 0.9) == 1e3 and calibrated_sr(1e-3, 0.0, 1.0, 0.0) == 1e-3
    # the channels count too: the mean is below its line, but half-way only 10% of the 60% asked are at zero
    assert calibrated_sr(1.0, 0.1, 1.0, ZERO_AT / 2, zeroed=0.1, asked=0.6) == pytest.approx(RATE)
    assert calibrated_sr(1.0, 0.1, 1.0, ZERO_AT / 2, zeroed=0.3, asked=0.6) == pytest.approx(1 / RATE)


@pytest.mark.slow
def test_auto_sr_reaches_the_share_at_zero(tiny_data, tmp_path):
    """Default sr (auto) on a small model and a few steps: the pushed share ends at exactly zero without any
    sr tuned for this model, this dataset or this many steps; sr itself moved (sparsity/sr, per epoch)."""
    args = tiny_train_args(tmp_path, epochs=5, optimizer="SGD", lr0=0.02, batch=4, nbs=4)
    out = sparse("yolov8n.yaml", tiny_data, sr_share=0.5, **args)
    results = pd.read_csv(out.parent / "results.csv")
    assert results["sparsity/gamma<1e-3"].iloc[-1] >= 0.4  # at least 4/5 of the pushed half
    assert results["sparsity/sr"].nunique() > 1


def test_the_step_waits_for_the_share_up_to_the_push_limit(tiny_data, tmp_path):
    """Step schedule: sr falls to sr/100 at sr_step only once the share asked is at zero; short of it the push goes
    on, to PUSH_LIMIT of the epochs at most. The other schedules are as asked."""
    from yoloslim.sparsity import PUSH_LIMIT

    trainer = SparseTrainer(
        overrides={
            "model": "yolov8n.yaml",
            "data": str(tiny_data),
            "sr": 2.0,
            "sr_step": 0.5,
            **tiny_train_args(tmp_path, epochs=20),
        }
    )
    trainer.reached = False
    for epoch, pushing in (
        (0, True),
        (9, True),
        (10, True),
        (int(PUSH_LIMIT * 20) - 1, True),
        (int(PUSH_LIMIT * 20), False),
    ):
        trainer.epoch = epoch
        assert trainer.pushing() is pushing and trainer.sr_now() == (2.0 if pushing else 0.02), epoch
    trainer.reached, trainer.epoch = True, 10
    assert not trainer.pushing() and trainer.sr_now() == pytest.approx(0.02)
    trainer.epoch = 9
    assert trainer.pushing() and trainer.sr_now() == 2.0  # reached early: the push still lasts to sr_step
    trainer.args.sr_schedule, trainer.reached, trainer.epoch = "linear", False, 10
    assert not trainer.pushing() and trainer.sr_now() == pytest.approx(1.0)


def test_a_sparse_run_short_of_its_share_says_so(tiny_data, tmp_path, capsys):
    """A push too weak to zero the share: it goes on past sr_step (sr stays, not sr/100), results.csv has the zeroed
    share per epoch, and the run ends with one warning naming the share reached, the share asked and what to do."""
    args = tiny_train_args(tmp_path, epochs=4, optimizer="SGD", lr0=0.01)
    out = sparse("yolov8n.yaml", tiny_data, sr=1e-3, sr_step=0.25, sr_share=0.5, **args)
    text = capsys.readouterr().out
    results = pd.read_csv(out.parent / "results.csv")
    assert "the push goes on until they are" in text
    assert results["sparsity/sr"].tolist() == pytest.approx([1e-3] * 4)  # epoch 4 is at 75% < PUSH_LIMIT
    zeroed = results["sparsity/zeroed"].iloc[-1]
    assert zeroed < 0.5
    assert f"sparse training zeroed {zeroed:.1%} of the prunable channels, 50.0% asked (sr_share=0.5)" in text
    assert "a prune above ratio=" in text and "prune at ratio<=" in text


@pytest.mark.parametrize("kind", ["wide", "lowest", "l1"])
def test_penalty_gradient_is_autograds_on_prunable_gammas_only(kind, tiny_data, tmp_path):
    """The added gradient is autograd's gradient of sr * penalty per nominal batch. It is added inside the optimizer's
    step, after Ultralytics unscaled and clipped the loss gradient, so it is the same with or without AMP."""
    from yoloslim.slimming import graph_of

    trainer = SparseTrainer(
        overrides={
            "model": "yolo11n.yaml",
            "data": str(tiny_data),
            "sr": 0.3,
            "penalty": kind,
            "sr_share": 0.3,
            **tiny_train_args(tmp_path, batch=4, nbs=16),
        }
    )
    trainer._setup_train()
    trainer.epoch = 0  # as in the first epoch of the training loop
    model = trainer.model
    groups = graph_of(model).groups()
    unfrozen = [g for g in groups if not g.frozen_reasons]
    prunable = {id(p.bn.weight): p.bn.weight for g in unfrozen for p in g.producers if p.bn}
    frozen = [p.bn.weight for g in groups if g.frozen_reasons for p in g.producers if p.bn]
    assert frozen and prunable and len(trainer.gammas) == len(prunable)
    torch.manual_seed(0)
    with torch.no_grad():  # distinct sizes, some gammas negative and some zero, as during training
        for gamma in prunable.values():
            gamma.uniform_(0.1, 1.5)
            gamma[::3] *= -1
            gamma[1::5] = 0

    for amp_scale in (1.0, 256.0):  # without AMP, and under AMP: by then the gradients are unscaled
        trainer.scaler = torch.amp.GradScaler("cpu", init_scale=amp_scale, enabled=amp_scale != 1.0)
        model.zero_grad(set_to_none=True)
        trainer.add_penalty_gradient()
        added = {k: g.grad.clone() for k, g in prunable.items()}
        model.zero_grad(set_to_none=True)
        images = trainer.batch_size * trainer.accumulate  # 4 x 4 = the nominal batch of 16
        (0.3 * reference_penalty(prunable.values(), unfrozen, kind, 0.3) * images / 16).backward()
        for k, g in prunable.items():  # (no grad: the penalty has no channel of that BN, e.g. a narrow one for wide)
            expected = g.grad if g.grad is not None else torch.zeros_like(g)
            assert torch.allclose(added[k], expected, atol=1e-6), "penalty gradient differs from autograd's"
    model.zero_grad(set_to_none=True)
    trainer.add_penalty_gradient()
    assert all(g.grad is None for g in frozen)  # attention BNs are left alone


def test_a_gamma_the_step_carries_across_zero_stops_there(tiny_data, tmp_path):
    trainer = SparseTrainer(
        overrides={
            "model": "yolov8n.yaml",
            "data": str(tiny_data),
            "sr": 1.0,
            "optimizer": "SGD",
            **tiny_train_args(tmp_path),
        }
    )
    trainer._setup_train()
    trainer.epoch = 0
    _, gamma = trainer.gammas[0]

    def step_from(values, grads):
        with torch.no_grad():
            gamma[:] = 0.5
            gamma[:3] = torch.tensor(values)
        trainer.optimizer.zero_grad(set_to_none=True)
        trainer.optimizer.state.clear()
        gamma.grad = torch.zeros_like(gamma)
        gamma.grad[:3] = torch.tensor(grads)  # lr 0.01: +-100 carries +-0.01 well past zero, 1 does not
        trainer.optimizer.step()
        return gamma.detach().clone(), trainer.optimizer.state[gamma]["momentum_buffer"]

    after, momentum = step_from([0.01, -0.01, 0.3], [100.0, -100.0, 1.0])
    assert after[:2].tolist() == [0.0, 0.0] and momentum[:2].tolist() == [0.0, 0.0]
    assert 0 < after[2] < 0.3 and momentum[2] != 0  # a gamma that does not reach zero moves as SGD says
    assert torch.all(after[3:] == 0.5)

    trainer.args.sr = 0.0  # plain training: steps are left as they are
    after, _ = step_from([0.01, -0.01, 0.3], [100.0, -100.0, 1.0])
    assert after[0] < 0 < after[1]


def test_sparse_training_shrinks_gammas_and_reports_them(tiny_data, tmp_path):
    from ultralytics import YOLO

    from yoloslim.slimming import graph_of

    def mean_prunable_gamma(weights):
        groups = graph_of(YOLO(weights).model.float()).groups()  # sparse.pt is a normal Ultralytics checkpoint
        bns = {id(p.bn): p.bn for g in groups if not g.frozen_reasons for p in g.producers if p.bn}
        return float(torch.cat([bn.weight.detach().abs() for bn in bns.values()]).mean())

    args = tiny_train_args(tmp_path, epochs=2, lr0=0.1, optimizer="SGD")
    plain = sparse("yolov8n.yaml", tiny_data, sr=0.0, **{**args, "name": "plain"})
    out = sparse("yolov8n.yaml", tiny_data, sr=5.0, **args)
    results = pd.read_csv(out.parent / "results.csv")
    for col in ("sparsity/gamma<1e-2", "sparsity/gamma<1e-3", "sparsity/mean_gamma", "sparsity/penalty_s"):
        assert col in results.columns
    epoch_seconds = results["time"].diff().fillna(results["time"])
    assert (0 < results["sparsity/penalty_s"]).all() and (results["sparsity/penalty_s"] < epoch_seconds).all()
    assert (pd.read_csv(plain.parent / "results.csv")["sparsity/penalty_s"] < 0.01).all()  # sr=0: nothing to do
    assert (out.parent / "gammas.png").stat().st_size > 0 and (out.parent / "gammas.csv").exists()
    assert mean_prunable_gamma(out) < mean_prunable_gamma(plain) - 0.02
    assert results["sparsity/mean_gamma"].iloc[-1] == pytest.approx(mean_prunable_gamma(out), abs=2e-3)


def test_results_csv_columns_hold_their_values_without_validation(tiny_data, tmp_path):
    """val=False (as the pipeline trains): every row of results.csv in its header's order, so lr/pg0 is the
    learning rate (falling from lr0) and the sparsity columns are shares and gammas, on every epoch."""
    args = tiny_train_args(tmp_path, epochs=3, optimizer="SGD", lr0=0.02, val=False)
    results = pd.read_csv(sparse("yolov8n.yaml", tiny_data, **args).parent / "results.csv")
    lr = results["lr/pg0"]
    assert lr.iloc[0] == pytest.approx(0.02, rel=0.05) and (lr.diff().dropna() < 0).all()
    assert results["sparsity/gamma<1e-2"].between(0, 1).all() and (results["sparsity/mean_gamma"] > 0.05).all()


def test_sparse_settings_travel_through_ddp_launch_file(tiny_data, tmp_path):
    from ultralytics.utils import DEFAULT_CFG_DICT
    from ultralytics.utils.dist import generate_ddp_file
    from ultralytics.utils.patches import torch_load

    trainer = SparseTrainer(
        overrides={
            "model": "yolov8n.yaml",
            "data": str(tiny_data),
            "sr": 3.0,
            "sr_schedule": "step",
            "sr_step": 0.7,
            "penalty": "l1",
            "sr_share": 0.3,
            **tiny_train_args(tmp_path),
        }
    )
    launch = generate_ddp_file(trainer)
    state = torch_load(launch.replace(".py", ".pt"), map_location="cpu")
    assert state["trainer"] is SparseTrainer
    worker = state["trainer"](cfg={**DEFAULT_CFG_DICT, "save_dir": ""}, overrides=state["args"])
    settings = (worker.args.sr, worker.args.sr_schedule, worker.args.sr_step, worker.args.penalty, worker.args.sr_share)
    assert settings == (3.0, "step", 0.7, "l1", 0.3)

    run = subprocess.run([sys.executable, launch], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    results = pd.read_csv(worker.save_dir / "results.csv")
    assert "sparsity/mean_gamma" in results.columns


def test_resume_keeps_the_original_schedule(tiny_data, tmp_path):
    args = {
        "model": "yolov8n.yaml",
        "data": str(tiny_data),
        "sr": 2.0,
        "sr_schedule": "linear",
        "penalty": "l1",
        **tiny_train_args(tmp_path, epochs=2, name="resumed"),
    }
    first = SparseTrainer(overrides=args)

    def stop_after_first_save(trainer):
        if trainer.epoch == 0:
            raise KeyboardInterrupt  # an interrupted run, with last.pt written

    first.add_callback("on_model_save", stop_after_first_save)
    with pytest.raises(KeyboardInterrupt):
        first.train()
    again = SparseTrainer(overrides={**args, "resume": str(first.last), "sr": 0.1, "penalty": "lowest"})
    assert (again.args.sr, again.args.sr_schedule, again.args.penalty) == (2.0, "linear", "l1")
    again.train()
    results = pd.read_csv(again.save_dir / "results.csv")
    assert list(results.epoch) == [1, 2]


def test_bad_sparse_settings_are_refused():
    for bad in ({"sr": -1}, {"sr_schedule": "cosine"}, {"sr_step": 1.5}, {"penalty": "l2"}, {"sr_share": 1}):
        with pytest.raises(YoloslimError):
            check_sparse_settings(bad)


def test_finetune_keeps_the_slim_width(tiny_data, tmp_path):
    from ultralytics import YOLO

    from yoloslim.pruning import prune
    from yoloslim.trainer import SlimTrainer, finetune

    result = prune(build("yolov8n.yaml", nc=2), ratio=0.5, project=tmp_path, name="prune", verbose=False)
    n_slim = sum(p.numel() for p in result.model.parameters())
    best = finetune(result.slim, tiny_data, **tiny_train_args(tmp_path, epochs=2))
    for weights in (best, best.parent / "last.pt"):
        assert sum(p.numel() for p in YOLO(weights).model.parameters()) == n_slim

    # resume from last.pt (the path DDP workers take too: a trainer made from args alone)
    again = SlimTrainer(
        overrides={
            "model": str(best.parent / "last.pt"),
            "data": str(tiny_data),
            **tiny_train_args(tmp_path, epochs=3, name="again"),  # not into last.pt's own folder: refused
        }
    )
    again.setup_model()
    assert sum(p.numel() for p in again.model.parameters()) == n_slim


def params(weights) -> int:
    from ultralytics import YOLO

    return sum(p.numel() for p in YOLO(weights).model.parameters())


def test_every_training_verb_keeps_a_slim_width(tiny_data, tmp_path):
    """train and sparse of a pruned .pt (iterative slimming), a model pickled without Ultralytics' dict, and
    stock YOLO(slim).train(trainer=SlimTrainer) all train the slim module, not the full-width yaml."""
    from ultralytics import YOLO

    from yoloslim.pruning import prune
    from yoloslim.trainer import SlimTrainer, sparse, train

    result = prune(build("yolov8n.yaml", nc=2), ratio=0.5, project=tmp_path, name="prune", verbose=False)
    n_slim = sum(p.numel() for p in result.model.parameters())
    assert n_slim < 0.8 * sum(p.numel() for p in build("yolov8n.yaml", nc=2).parameters())
    bare = tmp_path / "bare.pt"
    torch.save(result.model, bare)  # torch.save(model), no checkpoint dict
    trained = train(bare, tiny_data, **tiny_train_args(tmp_path, name="train"))
    assert params(trained) == n_slim
    assert torch.load(trained, weights_only=False)["train_args"]["amp"] is True  # Ultralytics' default (GPU only)
    assert params(sparse(result.slim, tiny_data, **tiny_train_args(tmp_path, name="sparse"))) == n_slim
    model = YOLO(result.slim)
    model.train(data=str(tiny_data), trainer=SlimTrainer, **tiny_train_args(tmp_path, name="stock"))
    assert params(tmp_path / "stock" / "weights" / "best.pt") == n_slim


def test_finetune_on_other_classes_rebuilds_only_the_class_outputs(tiny_data, tmp_path):
    """A slim 80-class yolov8n finetuned on a 3-class dataset: nc=3, every layer but the class outputs at its
    slim width with its weights, the rows of classes it knew kept by name; stock YOLO loads, predicts, exports."""
    from ultralytics import YOLO

    from yoloslim.pruning import prune
    from yoloslim.trainer import finetune

    model = build("yolov8n.yaml")  # 80 classes
    model.names = {0: "bud", 1: "leaf", **{i: f"class{i}" for i in range(2, 80)}}
    result = prune(model, ratio=0.5, project=tmp_path, name="prune", verbose=False)
    slim = result.model
    data = tmp_path / "three.yaml"  # the same images, a third class, the known two in another order
    data.write_text(f"path: {tiny_data.parent}\ntrain: images/train\nval: images/val\nnames: [leaf, bud, stone]\n")
    best = finetune(result.slim, data, **tiny_train_args(tmp_path, name="ft3", optimizer="SGD", lr0=0.0, momentum=0.0))
    tuned = YOLO(best)
    assert tuned.model.model[-1].nc == 3 and tuned.names == {0: "leaf", 1: "bud", 2: "stone"}
    old, new = dict(slim.named_parameters()), dict(tuned.model.named_parameters())
    for name, value in old.items():
        if ".cv3." in name and name.split(".")[4] == "2":  # the class convs: one row per class
            assert value.shape[0] == 80 and new[name].shape[0] == 3
        else:
            assert new[name].shape == value.shape, name
    for level in range(3):  # lr0=0: the rows of the classes the model had are its old rows, by name
        before, after = slim.model[-1].cv3[level][2], tuned.model.model[-1].cv3[level][2]
        torch.testing.assert_close(after.weight[[0, 1]], before.weight[[1, 0]].half().float())
    assert tuned.predict(torch.rand(1, 3, 64, 64), imgsz=64, verbose=False)[0].boxes is not None
    assert Path(tuned.export(format="onnx", imgsz=64)).exists()


def saved_weights(path) -> torch.Tensor:
    from ultralytics.utils.patches import torch_load

    ckpt = torch_load(path, map_location="cpu")
    state = (ckpt.get("ema") or ckpt["model"]).float().state_dict()  # mid-run saves keep the EMA apart
    return torch.cat([v.flatten() for k, v in state.items() if v.is_floating_point() and "running" not in k])


@pytest.mark.parametrize("stage", ["sparse", "finetune"])
def test_interrupted_run_resumes_to_the_same_result(stage, tiny_data, tmp_path):
    """Killed after epoch 1 of 3, then resume=True: it ends where the uninterrupted run ends. Not bit for bit:
    stock resume restarts from the saved (fp16, EMA) weights and re-seeds augmentation, so the bound is
    relative to what really changes the result, the seed."""

    from yoloslim.pruning import prune
    from yoloslim.trainer import SlimTrainer

    if stage == "sparse":
        trainer_cls, model, extra = SparseTrainer, "yolov8n.yaml", {"sr": 1.0, "sr_schedule": "linear"}
    else:
        trainer_cls, extra = SlimTrainer, {}
        model = str(prune(build("yolov8n.yaml", nc=2), ratio=0.5, project=tmp_path, name="prune", verbose=False).slim)
    args = {"model": model, "data": str(tiny_data), **extra, **tiny_train_args(tmp_path, epochs=3, lr0=0.05)}

    def finished(**kw):
        trainer = trainer_cls(overrides={**args, **kw})
        trainer.train()
        return trainer

    def stop_after_first_epoch(trainer):
        if trainer.epoch == 0:
            raise KeyboardInterrupt  # last.pt of epoch 1 is on disk

    whole, other_seed = finished(name="whole"), finished(name="seed1", seed=1)
    interrupted = trainer_cls(overrides={**args, "name": "cut"})
    interrupted.add_callback("on_model_save", stop_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        interrupted.train()
    resumed = finished(name="cut", resume=str(interrupted.last))

    assert list(pd.read_csv(resumed.save_dir / "results.csv").epoch) == [1, 2, 3]
    end, end_resumed, end_seed1 = (saved_weights(t.last) for t in (whole, resumed, other_seed))
    assert end.shape == end_resumed.shape  # same width (the slim one for finetune)
    gap = (end_resumed - end).norm()
    print(f"{stage}: resumed-to-whole {gap:.4f}, seed 1-to-whole {(end_seed1 - end).norm():.4f}")
    assert gap < 0.5 * (end_seed1 - end).norm()  # measured: 60x (sparse) and 5x (finetune) closer


def test_the_ema_averages_over_a_short_run(tiny_data, tmp_path):
    """Ultralytics' EMA time constant is 2000 steps: a short run would save its last step's weights, unaveraged."""
    from yoloslim.trainer import EMA_DECAY, EMA_SPAN, EMA_TAU, TRAINERS

    args = tiny_train_args(tmp_path, epochs=2, val=False)
    trainer = TRAINERS["detect"]["slim"](overrides={"model": "yolov8n.yaml", "data": str(tiny_data), **args})
    trainer.train()
    steps = trainer.ema.updates
    assert steps == 2 * 4  # 16 images in batches of 4, nbs 4: one optimizer step per batch
    assert trainer.ema.decay(steps) == pytest.approx(EMA_DECAY * (1 - math.exp(-1 / EMA_SPAN)))
    assert trainer.ema.decay(steps) > 0.9 > EMA_DECAY * (1 - math.exp(-steps / EMA_TAU))
