"""The prune and inspect verbs: graph -> plan -> surgery -> slim.pt, plan.json, a layer table and a plot."""

from __future__ import annotations

import contextlib
import copy
import math
import tempfile
from dataclasses import dataclass
from inspect import signature
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from ultralytics import YOLO

from . import classic
from .args import verb
from .checkpoint import check_stride, load_model, save_checkpoint, task_of
from .data import check
from .deploy import check_runtime
from .errors import YoloslimError
from .io import atomic_write_text, output_set, owned
from .levels import check_fits, find_level
from .log import LOGGER
from .measure import layer_table
from .plan import MAX_GROUP_RATIO, Plan, fingerprint, keep_floor, make_plan, removal_stats, resolve
from .slimming import graph_of, prune_in_place
from .trainer import TRAINERS


@dataclass
class PruneResult:
    model: nn.Module
    plan: Plan
    layers: pd.DataFrame
    save_dir: Path | None

    @property
    def slim(self) -> Path | None:
        """The saved slim checkpoint (None with save=False)."""
        return self.save_dir / "slim.pt" if self.save_dir else None

    @property
    def yolo(self):
        """The slim model as an Ultralytics YOLO, to predict, val or export; to train it keep its width with
        .train(..., trainer=yoloslim.SlimTrainer). A classic YOLOv5 model: the yolov5 package's AutoShape model
        (what yolov5.load() returns: it predicts images, paths and arrays)."""

        if classic.is_classic(self.model):
            return classic.autoshape(self.model)
        if self.slim:
            return YOLO(str(self.slim))
        with tempfile.TemporaryDirectory(prefix="yoloslim-") as tmp:  # YOLO loads from a file; it keeps the module
            yolo = YOLO(str(save_checkpoint(self.model, Path(tmp) / "slim.pt")))
        # That file is gone now: Ultralytics names what it writes after it (export: slim.onnx beside it), so point
        # it at the current folder, where a stock YOLO("x.yaml") writes too; there is no file to resume from.
        yolo.model.pt_path = yolo.overrides["model"] = "slim.pt"
        yolo.ckpt_path = None
        return yolo


BUDGETS = ("gflops", "params", "latency_ms", "speedup", "max_drop")
DESTRUCTIVE_SHARE = 0.1  # removed |gamma| above this share of the kept median: the prune is not of zeros
OUTPUTS = ("slim.pt", "plan.json", "layers.csv", "channels.png")  # what a prune writes; slim.pt last marks it done
SHORTFALL = 0.01  # a prune that removes less than asked by more than this share of the channels says so (a grid step)


@verb("prune")
def prune(
    model,
    ratio: float | None = None,
    threshold: float | None = None,
    min_keep=0.05,
    round_to: int = 1,
    plan: str | Plan | None = None,
    compensate: bool = True,
    imgsz: int = 640,
    project: str = "runs/yoloslim",
    name: str = "prune",
    exist_ok: bool = False,
    save: bool = True,
    verbose: bool = True,
    max_group_ratio: float = MAX_GROUP_RATIO,
    gflops: float | None = None,
    params: float | None = None,
    latency_ms: float | None = None,
    speedup: float | None = None,
    max_drop: float | None = None,
    data: str | None = None,
    val_imgsz: int = 320,
    runtime: str = "onnxruntime",
    precision: str = "fp32",
    dry_run: bool = False,
) -> PruneResult:
    """Remove low-gamma channels and save slim.pt, plan.json, layers.csv and channels.png in project/name.

    model: a .pt, a yaml or a module (never modified). How far, one of: ratio (the fraction of the prunable
    channels to remove), threshold (remove channels with |gamma| below it), plan (a plan.json to apply again), or
    a budget: gflops= / params= (at most that many, counted at imgsz), latency_ms= / speedup= (CPU, 1 thread, at
    imgsz, on runtime= onnxruntime or openvino at precision= fp32, bf16 (openvino) or int8, calibrated on data=),
    max_drop= (the most mAP50-95 to lose on data=, validated at val_imgsz); a budget finds the level.
    min_keep: the least a group keeps (a fraction and/or a channel count); max_group_ratio: the most a group
    loses; round_to: kept counts are multiples of it. dry_run: show the plan and the layer table, write nothing."""
    source = model
    model = load_model(source)
    if not isinstance(source, (str, Path)):
        model = copy.deepcopy(model)  # the caller's module stays as it was
    check_stride(model, imgsz)
    budgets = {k: v for k, v in zip(BUDGETS, (gflops, params, latency_ms, speedup, max_drop)) if v is not None}
    given = [f"{k}=" for k, v in (("ratio", ratio), ("threshold", threshold), ("plan", plan)) if v is not None]
    if len(given) + len(budgets) != 1:
        raise YoloslimError(
            "give one of ratio=, threshold=, plan= or a budget (gflops=, params=, latency_ms=, "
            f"speedup=, max_drop=); got {', '.join(given + [f'{k}=' for k in budgets]) or 'none'}"
        )
    if "max_drop" in budgets and not data:
        raise YoloslimError("max_drop= needs data= (a data.yaml to validate on)")
    plan_args = {"min_keep": min_keep, "round_to": round_to, "max_group_ratio": max_group_ratio}
    settings = {**plan_args, "data": data, "val_imgsz": val_imgsz, "project": project, "name": name}
    settings["exist_ok"] = exist_ok
    if plan is not None:
        ignored(settings, ("min_keep", "round_to", "max_group_ratio"), "plan= keeps the channels the plan lists")
    timed = bool({"latency_ms", "speedup"} & set(budgets))
    settings.update(runtime=runtime, precision=precision)
    if timed:
        check_runtime(runtime, precision, data)
        if precision == "int8":
            check(data, task=task_of(model))
    else:
        ignored(settings, ("runtime", "precision"), "only latency_ms= and speedup= time the model")
    if "max_drop" not in budgets and not (timed and precision == "int8"):
        ignored(settings, ("data", "val_imgsz"), "only max_drop= validates (and precision=int8 calibrates)")
    elif "max_drop" not in budgets:
        ignored(settings, ("val_imgsz",), "only max_drop= validates")
    if dry_run or not save:
        writes = "dry_run=True writes nothing" if dry_run else "save=False writes nothing"
        ignored(settings, ("project", "name", "exist_ok"), writes)
    plan_file = plan if isinstance(plan, (str, Path)) else None
    if plan_file is not None:
        plan = read_plan(plan_file)
    save_dir = Path(project) / name if save and not dry_run else None
    with owned(save_dir) if save_dir else contextlib.nullcontext():
        if save_dir:  # before any work: a long budget search must not end in "already holds a slim.pt"
            check_outputs(save_dir, exist_ok, (source, plan_file))
        if "max_drop" in budgets:
            check_stride(model, val_imgsz, "val_imgsz")
            check_fits(model, data, check(data, task=task_of(model))["names"])
        found = None
        if budgets:
            on = {"runtime": runtime, "precision": precision}
            found = find_level(model, budgets, imgsz, data=data, val_imgsz=val_imgsz, **on, **plan_args)
            ratio = found["level"]
            where = f" ms on {runtime} {precision}" if timed else ""
            LOGGER.info(
                f"{next(iter(budgets))}={found['value']:g}: level {ratio:g} reaches {found['reached']:.4g}{where} "
                f"(unpruned {found['unpruned']:.4g}; {found['tried']} levels tried)"
            )
        graph = graph_of(model)
        before = copy.deepcopy(model)
        if plan is None:
            plan = make_plan(graph, ratio=ratio, threshold=threshold, **plan_args)
            if plan.removed == 0:
                asked = f"ratio={ratio:g}" if ratio is not None else f"threshold={threshold:g}"
                raise YoloslimError(
                    f"{asked} removes no channel (after min_keep={min_keep} and round_to={round_to}); "
                    "give a larger ratio or threshold"
                )
            if found:
                plan.settings["budget"] = found
            else:
                warn_if_short(graph, plan, ratio, threshold)
        else:
            check_plan(graph, plan)  # before the warning below reads the plan's indices
        warn_if_destructive(graph, plan)
        prune_in_place(model, graph, plan, compensate=compensate)
        layers = layer_table(before, model, imgsz)

        if save_dir:
            from .report import plot_channels  # deferred: report loads matplotlib, only needed when a plot is drawn

            with output_set(save_dir, last="slim.pt") as staging:  # all four or none, even on Ctrl-C
                plan.save(staging / "plan.json")
                write_table(layers, staging / "layers.csv")
                plot_channels(before, model, staging / "channels.png")
                save_checkpoint(
                    model,
                    staging / "slim.pt",
                    plan=str(save_dir / "plan.json"),
                    source=str(source) if isinstance(source, (str, Path)) else type(source).__name__,
                )
    if verbose:
        report(plan, graph, layers, imgsz, save_dir, dry_run, model, Path(project) / name)
    return PruneResult(model, plan, layers, save_dir)


def ignored(settings: dict, keys, why: str) -> None:
    """One warning line per argument given (not at its default) that this prune does not use."""
    for key in keys:
        default = PRUNE_DEFAULTS[key]
        if settings[key] != default and not (key == "data" and not settings[key]):
            LOGGER.warning(f"warning: {key}={settings[key]} is ignored: {why}")


def check_outputs(save_dir: Path, exist_ok: bool, inputs) -> None:
    """Refuse to write over an input (model=, plan=) or, without exist_ok, over an earlier prune's slim.pt."""
    for value in inputs:
        if isinstance(value, (str, Path)) and any(Path(value).resolve() == (save_dir / f).resolve() for f in OUTPUTS):
            raise YoloslimError(f"refusing to overwrite the input {value}; choose another project/name")
    if (save_dir / "slim.pt").exists() and not exist_ok:
        raise YoloslimError(
            f"{save_dir} already holds a slim.pt; pass exist_ok=True to replace it, or name=<new folder>"
        )


def read_plan(path) -> Plan:
    """Plan.load, with one line for whatever is not a plan.json (a folder, a JSON list, a damaged file)."""
    if Path(path).is_dir():
        raise YoloslimError(f"plan={path} is a folder; give the plan.json in it (written by 'yoloslim prune')")
    try:
        return Plan.load(path)
    except (AttributeError, TypeError, ValueError, OSError) as e:
        raise YoloslimError(
            f"{path} is not a yoloslim plan.json ({type(e).__name__}); make one with 'yoloslim prune'"
        ) from None


def check_plan(graph, plan: Plan) -> None:
    """One line for a plan that is not this model's, naming a group that differs, before anything reads it."""
    if not plan.kept or not isinstance(plan.settings, dict):
        raise YoloslimError("the plan prunes no channel group or is damaged; make a new plan with 'yoloslim prune'")
    sizes = {g.name: g.size for g in graph.groups() if not g.frozen_reasons}
    kept = [i for k in plan.kept.values() for i in k]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in [*kept, *plan.sizes.values()]):
        raise YoloslimError(
            "the plan's channel indices and sizes must be whole numbers; make a new plan with 'yoloslim prune'"
        )
    if plan.fingerprint != fingerprint(graph):
        differ = [n for n in plan.sizes if sizes.get(n) != plan.sizes[n]] + [n for n in sizes if n not in plan.sizes]
        where = ""
        if differ:
            n = differ[0]
            here = f"{sizes[n]} here" if n in sizes else "no such prunable group here"
            there = f"{plan.sizes[n]} channels in the plan" if n in plan.sizes else "not in the plan"
            where = f" ({len(differ)} channel groups differ, e.g. {n}: {there}, {here})"
        raise YoloslimError(
            f"the plan was made for a different architecture than this model{where}; "
            "make a new plan for it with 'yoloslim prune'"
        )
    resolve(graph, plan)


def warn_if_short(graph, plan: Plan, ratio, threshold) -> None:
    """One warning line when min_keep, max_group_ratio or round_to kept much of what a ratio or threshold asked
    to remove: the cut was not reached."""
    held, asked = held_back(graph, plan, ratio, threshold)
    if held > SHORTFALL * plan.prunable:
        LOGGER.warning(
            f"warning: {asked} could not be reached: {limits(plan.settings)} keep {held} of the channels it would "
            f"remove; removed {plan.removed}/{plan.prunable} ({plan.removed / plan.prunable:.0%}) instead; lower "
            "min_keep or round_to, or raise max_group_ratio, to remove more"
        )


def limits(settings: dict) -> str:
    s = settings
    return f"min_keep={s['min_keep']}, max_group_ratio={s['max_group_ratio']:g} and round_to={s['round_to']}"


def held_back(graph, plan: Plan, ratio=None, threshold=None) -> tuple[int, str]:
    """(channels the per-group floors min_keep and max_group_ratio and the rounding up to round_to kept of those the
    cut chose, the cut in words). The cut is make_plan's: the lowest `ratio` of all channels, or all below
    `threshold`. Equal split halves keep a few more too, as the blocks need; they are not counted."""
    groups = [g for g in graph.groups() if g.name in plan.kept]
    scores = torch.cat([g.importance() for g in groups])
    if ratio is not None:
        cut = torch.zeros(len(scores), dtype=torch.bool)
        cut[torch.argsort(scores, stable=True)[: int(ratio * len(scores))]] = True
        asked = f"ratio={ratio:g} ({int(cut.sum())} of {len(scores)} channels)"
    else:
        cut = scores < threshold
        asked = f"threshold={threshold:g} ({int(cut.sum())} channels below it)"
    s, held, start = plan.settings, 0, 0
    for g in groups:
        want = g.size - int(cut[start : start + g.size].sum())
        start += g.size
        floor = max(keep_floor(g.size, s["min_keep"]), math.ceil((1 - s["max_group_ratio"]) * g.size - 1e-9))
        held += min(g.size, math.ceil(max(want, floor) / s["round_to"]) * s["round_to"]) - want
    return held, asked


def report(plan, graph, layers, imgsz, save_dir, dry_run, model, would_be) -> None:
    LOGGER.info(layers.to_string(index=False))
    if dry_run:
        groups = pd.DataFrame(
            [
                {"group": n, "channels": plan.sizes[n], "kept": len(k), "removed": plan.sizes[n] - len(k)}
                for n, k in plan.kept.items()
            ]
        )
        LOGGER.info(groups.to_string(index=False))
    total = layers.iloc[-1]
    LOGGER.info(
        f"{'dry run: would prune' if dry_run else 'pruned'} {plan.removed}/{plan.prunable} prunable channels "
        f"(threshold |gamma| {plan.settings.get('threshold_used', float('nan')):.4g}): "
        f"params {int(total.params_before):,} -> "
        f"{int(total.params_after):,}, GFLOPs {total.gflops_before:.2f} -> {total.gflops_after:.2f} at {imgsz}"
    )
    if dry_run:
        LOGGER.info(f"dry run: nothing was written (without dry_run=True: {', '.join(OUTPUTS)} in {would_be})")
    elif save_dir:
        slim = save_dir / "slim.pt"
        if classic.is_classic(model):
            how = "the yolov5 package's yolov5.load() or a clone of the repository loads it"
        else:
            trainer = TRAINERS[task_of(model)]["slim"].__name__
            how = (
                f"in Python: YOLO('{slim}').train(data=..., trainer=yoloslim.{trainer}); a plain YOLO(...).train() "
                "rebuilds the model from its yaml at full width"
            )
        LOGGER.info(
            f"saved {slim}, plan.json, layers.csv, channels.png in {save_dir}\n"
            f"train it at its slim width: yoloslim finetune model={slim} data=... ({how})"
        )


def warn_if_destructive(graph, plan: Plan) -> None:
    """One warning line when the channels a plan removes are not near zero: the model will lose accuracy until
    it is finetuned. Sparse training's zeros (|gamma| < 1e-3 or so) never trigger it."""
    scores = {g: g.importance() for g in graph.groups() if g.name in plan.kept}
    removed, median = removal_stats(scores, plan.kept)
    if past_zeros(removed, median):
        LOGGER.warning(
            f"warning: the channels this prune removes are not near zero: the largest removed |gamma| is "
            f"{removed:.3g}, {removed / median:.0%} of the kept channels' median ({median:.3g}). Expect a "
            "large accuracy drop until finetuned; sparse-train first ('yoloslim sparse') or finetune, and "
            "'yoloslim sweep' shows the cost per level"
        )


def past_zeros(removed_max: float, kept_median: float) -> bool:
    """Whether a prune removes channels that are not near zero: its largest removed importance is above
    DESTRUCTIVE_SHARE of the kept channels' median (plan.json's removed_importance_max, kept_importance_median)."""
    return kept_median > 0 and removed_max > DESTRUCTIVE_SHARE * kept_median


PRUNE_DEFAULTS = {k: p.default for k, p in signature(prune).parameters.items()}


def write_table(table: pd.DataFrame, path: Path) -> None:
    atomic_write_text(path, table.to_csv(index=False))


@verb("inspect")
def inspect(model, verbose: bool = True) -> pd.DataFrame:
    """One row per channel group: size, producers, consumers, importance (|gamma|) and frozen reasons."""
    graph = graph_of(load_model(model))
    rows = []
    for g in graph.groups():
        if not g.producers:
            continue
        imp = g.importance() if g.gammas() else torch.full((g.size,), float("nan"))
        rows.append(
            {
                "group": g.name,
                "channels": g.size,
                "producers": len(g.producers),
                "consumers": len(g.consumers),
                "gamma_min": float(imp.min()),
                "gamma_median": float(imp.median()),
                "gamma_max": float(imp.max()),
                "below_1e-2": float((imp < 1e-2).float().mean()),
                "status": "prunable" if not g.frozen_reasons else "frozen: " + g.frozen_reasons[0],
            }
        )
    table = pd.DataFrame(rows)
    if verbose:
        with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 70):
            LOGGER.info(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        live = table[table.status == "prunable"]
        allg = torch.cat([g.importance() for g in graph.groups() if not g.frozen_reasons])
        q = torch.quantile(allg, torch.tensor([0.1, 0.5, 0.9])).tolist()
        LOGGER.info(
            f"{len(live)} prunable groups, {int(live.channels.sum())} channels; {len(table) - len(live)} frozen "
            f"groups, {int(table.channels.sum() - live.channels.sum())} channels. "
            f"|gamma| 10/50/90%: {q[0]:.3g} / {q[1]:.3g} / {q[2]:.3g}; "
            f"below 1e-2: {float((allg < 1e-2).float().mean()):.1%}"
        )
    return table
