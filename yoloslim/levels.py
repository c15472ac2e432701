"""How far to prune: measure a model pruned at a level, and search the levels for a budget.

A level is prune's ratio (the share of the prunable channels to remove) on a grid of 0.01 steps. Pruning
takes a fraction of a second, so a search prunes again at every level it tries; a bisection tries about
seven. Sizes (params, GFLOPs) fall as the level rises; latency and accuracy do too, though not strictly
(noise), so what a search returns is a boundary: a level that meets the budget next to one that does not.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from torch import nn

from .checkpoint import load_model
from .errors import YoloslimError
from .log import LOGGER
from .measure import layer_stats
from .onnx_export import export_with_report
from .paired import validate
from .slimming import pruned_copy

GRID = [round(i / 100, 2) for i in range(1, 100)]
# mAP50-95 below this: the model finds next to nothing on the data, so no level can lose accuracy and a drop limit
# picks a meaningless level (an untrained model, or data that is not the model's)
MIN_SCORE = 0.01
UNITS = {"gflops": "GFLOPs", "params": "parameters", "latency_ms": "ms", "speedup": "ms"}


def check_fits(model: nn.Module, data, names: dict | None = None) -> None:
    """Validation compares the model's outputs with data's labels by index: refuse a model whose class count or
    keypoint layout is not the data's (its mAP would mean nothing, or Ultralytics' validator fails), before any work.
    names: the data's class names, as yoloslim.data.check returns them."""
    path = Path(data)
    path = path / "data.yaml" if path.is_dir() else path
    spec = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
    head = model.model[-1]
    kpt = spec.get("kpt_shape")
    if hasattr(head, "kpt_shape") and kpt is not None and list(head.kpt_shape) != list(kpt):
        raise YoloslimError(
            f"the model's keypoints are kpt_shape {list(head.kpt_shape)}, the data's {list(kpt)}; validation compares "
            "them point by point: give data with the model's kpt_shape"
        )
    if names is None:
        return
    nc = int(getattr(head, "nc", len(names)))
    if nc != len(names):
        raise YoloslimError(
            f"the model detects {nc} classes, data= has {len(names)}: validation compares class ids, so its mAP would "
            "mean nothing; validate on the data it was trained on, or finetune it on this data first"
        )
    own = {int(k): str(v) for k, v in dict(getattr(model, "names", None) or {}).items()}
    numbered = all(v in (str(k), f"class{k}", f"class_{k}") for k, v in own.items())  # built from a yaml: no names
    if own and not numbered and own != dict(names):
        LOGGER.warning(
            f"warning: the model's classes ({', '.join(own.values())}) are not data='s ({', '.join(names.values())}); "
            "validation compares them by id"
        )


def meaningless_drop(reference: float, max_drop: float) -> str | None:
    """Why a drop limit cannot choose a level on this model (None when it can)."""
    if reference < MIN_SCORE:
        return (
            f"the unpruned model scores mAP50-95 {reference:.4f} on data= (below {MIN_SCORE}): it finds next to "
            "nothing there, so every level 'keeps' its accuracy; train it on this data first, or check that data= is "
            "the data it was trained on"
        )
    if reference <= max_drop:
        return (
            f"max_drop={max_drop:g} is at least the unpruned model's mAP50-95 ({reference:.4f}): every level meets it; "
            "give a smaller max_drop"
        )
    return None


def size(model: nn.Module, imgsz: int) -> dict:
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "gflops": float(layer_stats(model, imgsz).gflops.sum()),
    }


def latency_ms(
    model: nn.Module, imgsz: int, runs: int = 30, threads: int = 1, runtime="onnxruntime", precision="fp32", data=None
) -> float:
    """Median CPU latency of the model exported (and checked) at imgsz, on runtime at precision (int8: calibrated
    on data)."""
    if (runtime, precision) != ("onnxruntime", "fp32"):
        from .deploy import latency_on  # deferred: its runtimes load only when a budget names one

        return latency_on(model, imgsz, runtime, precision, data, runs=runs)
    with tempfile.TemporaryDirectory(prefix="yoloslim-latency-") as tmp:
        _, report = export_with_report(model, imgsz=imgsz, out=Path(tmp) / "m.onnx", runs=runs, threads=threads)
    return report["latency"]["median_ms"]


def accuracy(model: nn.Module | str | Path, data, imgsz: int, batch: int = 16) -> dict:
    """mAP50 and mAP50-95 of a module or a .pt on data's val split at imgsz (Ultralytics' validator): the task's own
    (mask for segment, pose for pose, the rotated boxes' for obb), with the boxes' as box mAP50(-95) for segment
    and pose."""

    m = validate(model, load_model(model), data, imgsz, batch)
    own = getattr(m, "seg", None) or getattr(m, "pose", None)
    if own is None:
        return {"mAP50": float(m.box.map50), "mAP50-95": float(m.box.map)}
    return {
        "mAP50": float(own.map50),
        "mAP50-95": float(own.map),
        "box mAP50": float(m.box.map50),
        "box mAP50-95": float(m.box.map),
    }


def highest_valid(model: nn.Module, **plan_args) -> float:
    """The highest grid level at which every group keeps a channel (min_keep=0 with no cap can empty one)."""
    lo, hi = 0, len(GRID) - 1
    if _valid(model, GRID[hi], plan_args):
        return GRID[hi]
    if not _valid(model, GRID[lo], plan_args):
        raise YoloslimError(f"even level {GRID[lo]} removes every channel of a group; raise min_keep")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _valid(model, GRID[mid], plan_args) else (lo, mid)
    return GRID[lo]


def _valid(model, level, plan_args) -> bool:
    try:
        pruned_copy(model, level, **plan_args)
        return True
    except YoloslimError:
        return False


def boundary(ok, levels: list[float]) -> float | None:
    """The level L where ok(L) and not ok(next level), by bisection over levels (ok true at the low end);
    None when even the first level fails, the last level when all pass."""
    lo, hi = 0, len(levels) - 1
    if not ok(levels[lo]):
        return None
    if ok(levels[hi]):
        return levels[hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if ok(levels[mid]) else (lo, mid)
    return levels[lo]


def find_level(
    model: nn.Module,
    budget: dict,
    imgsz: int,
    data=None,
    val_imgsz: int = 320,
    batch: int = 16,
    runtime: str = "onnxruntime",
    precision: str = "fp32",
    **plan_args,
) -> dict:
    """The level a budget asks for, and what it reached.

    budget: one of gflops= or params= (at most this much: the lowest level that fits), latency_ms= or speedup=
    (on runtime at precision, CPU, at imgsz: the lowest level that is that fast), max_drop= (mAP50-95 on data at
    val_imgsz: the highest level whose pruned model loses at most that much against the unpruned one)."""
    ((key, value),) = budget.items()
    measured = {}

    def valid_levels() -> list[float]:  # after the checks of the unpruned model: this prunes several times
        top = highest_valid(model, **plan_args)
        return [lv for lv in GRID if lv <= top]

    def at(level) -> nn.Module:
        return pruned_copy(model, level, **plan_args)[0]

    if key in ("gflops", "params"):

        def measure(level):
            return size(at(level), imgsz)[key]

        reference = size(model, imgsz)[key]
        fits = lambda level: measured.setdefault(level, measure(level)) <= value  # noqa: E731
        what = f"{key}={value:g}"
        target = value
    elif key in ("latency_ms", "speedup"):
        if key == "speedup" and value <= 1:
            raise YoloslimError(f"speedup={value:g} asks for no speedup: the unpruned model is already within it")
        on = {"runtime": runtime, "precision": precision, "data": data}
        base = latency_ms(model, imgsz, **on)
        target = value if key == "latency_ms" else base / value
        reference = base
        fits = lambda level: measured.setdefault(level, latency_ms(at(level), imgsz, **on)) <= target  # noqa: E731
        what = f"{key}={value:g} ({target:.1f} ms against {base:.1f} ms unpruned, {runtime} {precision} CPU at {imgsz})"
    else:  # max_drop
        reference = accuracy(model, data, val_imgsz, batch)["mAP50-95"]
        why = meaningless_drop(reference, value)
        if why:
            raise YoloslimError(f"max_drop={value:g} cannot choose a level: {why}")
        levels = valid_levels()
        keeps = (
            lambda level: reference
            - measured.setdefault(  # noqa: E731
                level, accuracy(at(level), data, val_imgsz, batch)["mAP50-95"]
            )
            <= value
        )
        level = boundary(keeps, levels)
        if level is None:
            raise YoloslimError(
                f"max_drop={value:g}: even level {levels[0]} loses more mAP50-95 "
                f"({reference - measured[levels[0]]:.4f} at {val_imgsz} px); allow a larger drop"
            )
        return {
            "budget": key,
            "value": value,
            "level": level,
            "reached": measured.get(level),
            "unpruned": reference,
            "tried": len(measured),
            "val_imgsz": val_imgsz,
        }
    if reference <= target:  # pruning would only lose accuracy for nothing
        raise YoloslimError(
            f"{what}: the unpruned model is already within it ({reference:.4g} {UNITS[key]} at {imgsz} px); "
            "nothing was pruned or written: give a tighter budget, or use the model as it is"
        )
    levels = valid_levels()
    # sizes and latency fall as the level rises: the lowest level that fits is a boundary of "does not fit"
    if not fits(levels[-1]):
        raise YoloslimError(
            f"{what} cannot be reached: the most this model can be pruned (level {levels[-1]}, "
            f"with min_keep/max_group_ratio) gives {measured[levels[-1]]:.4g}; raise the budget"
        )
    if fits(levels[0]):
        level = levels[0]
    else:
        level = levels[levels.index(boundary(lambda lv: not fits(lv), levels)) + 1]
    return {
        "budget": key,
        "value": value,
        "level": level,
        "reached": measured[level],
        "unpruned": reference,
        "tried": len(measured),
    }
