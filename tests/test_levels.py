"""Choosing how far to prune: budgets, max_drop, the sweep, the destructive-prune warning, dry runs."""

import pandas as pd
import pytest
import torch
from helpers import build, fast_only, tiny_train_args

import yoloslim
from yoloslim.levels import GRID, boundary, size
from yoloslim.slimming import graph_of, pruned_copy


@pytest.mark.parametrize("cfg", fast_only("yolov8n.yaml", ["yolov5n.yaml", "yolov8n.yaml", "yolo11n.yaml"]))
@pytest.mark.parametrize("key", fast_only("gflops", ["gflops", "params"]))
def test_a_size_budget_is_met_by_the_least_pruning(cfg, key):
    model = build(cfg)
    budget = size(model, 640)[key] * 0.5
    result = yoloslim.prune(model, save=False, verbose=False, round_to=8, **{key: budget})
    found = result.plan.settings["budget"]
    assert found["reached"] <= budget and size(result.model, 640)[key] == pytest.approx(found["reached"])
    lower = GRID[GRID.index(found["level"]) - 1]  # one step less pruning would not fit
    assert size(pruned_copy(model, lower, round_to=8)[0], 640)[key] > budget


def test_boundary_finds_a_level_next_to_one_that_fails():
    levels = GRID
    passes = {lv: lv < 0.37 or 0.5 < lv < 0.55 for lv in levels}  # not monotone: a later island passes too
    level = boundary(lambda lv: passes[lv], levels)
    i = levels.index(level)
    assert passes[level] and not passes[levels[i + 1]]
    assert boundary(lambda lv: False, levels) is None and boundary(lambda lv: True, levels) == levels[-1]


@pytest.mark.slow
def test_sweep_on_real_data(tiny_data, tmp_path):
    """The table and plot of a sweep. (The seeded model scores ~0, so there is no knee and max_drop refuses it:
    tests/test_prune_hardening.py; scripts/bench_levels.py runs both on a trained sparse model.)"""
    model = build("yolov8n.yaml", nc=2)
    table = yoloslim.sweep(model, data=tiny_data, levels="0.3,0.6", imgsz=64, runs=3, project=tmp_path, name="sw")
    saved = pd.read_csv(tmp_path / "sw" / "sweep.csv")
    assert list(saved.level) == [0.0, 0.3, 0.6] and (tmp_path / "sw" / "sweep.png").stat().st_size > 0
    assert (saved.gflops.diff().dropna() < 0).all() and (saved.latency_ms > 0).all()
    assert (saved.removed.diff().dropna() > 0).all() and saved.removed.iloc[0] == 0
    assert list(table.columns) == list(saved.columns)


def test_dry_run_shows_the_plan_and_writes_nothing(tmp_path, capsys):
    from yoloslim.cli import main

    assert main(["prune", "model=yolov8n.yaml", "ratio=0.5", "dry_run=True", f"project={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "dry run: would prune" in out and "nothing was written" in out and not any(tmp_path.iterdir())


def zero(model, share: float):
    """gamma and beta of the weakest `share` of each prunable group set to 0, as sparse training leaves them."""
    with torch.no_grad():
        for g in graph_of(model).groups():
            if g.frozen_reasons:
                continue
            drop = g.importance().argsort()[: int(share * g.size)]
            for p in g.producers:
                if p.bn is not None:
                    p.bn.weight[p.offset + drop] = 0
                    p.bn.bias[p.offset + drop] = 0
    return model


@pytest.mark.slow
def test_the_warning_fires_on_a_dense_model_only(tiny_data, tmp_path, capsys):
    """Trained without sparsity: the removed gammas are not near zero, so prune warns. At zeros such as sparse
    training leaves (gamma and beta 0) it does not (a real sparse model: scripts/bench_levels.py)."""
    plain = yoloslim.train("yolov8n.yaml", tiny_data, **tiny_train_args(tmp_path, name="plain"))
    capsys.readouterr()
    yoloslim.prune(plain, ratio=0.3, save=False)
    assert "are not near zero" in capsys.readouterr().out

    capsys.readouterr()
    yoloslim.prune(zero(build("yolov8n.yaml"), 0.4), ratio=0.3, save=False)
    out = capsys.readouterr().out
    assert "pruned" in out and "are not near zero" not in out
