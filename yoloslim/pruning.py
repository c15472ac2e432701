"""The prune and inspect verbs: graph -> plan -> surgery -> slim.pt, plan.json, a layer table and a plot."""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from ultralytics import YOLO

from . import YoloslimError
from .args import verb
from .checkpoint import check_stride, load_model, save_checkpoint, task_of
from .data import check
from .io import atomic_write_text, owned
from .levels import find_level
from .log import LOGGER
from .measure import layer_table
from .plan import MAX_GROUP_RATIO, Plan, make_plan, removal_stats
from .slimming import graph_of, prune_in_place


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
        .train(..., trainer=yoloslim.SlimTrainer)."""

        if self.slim:
            return YOLO(str(self.slim))
        with tempfile.TemporaryDirectory(prefix="yoloslim-") as tmp:  # YOLO loads from a file; it keeps the module
            return YOLO(str(save_checkpoint(self.model, Path(tmp) / "slim.pt")))


BUDGETS = ("gflops", "params", "latency_ms", "speedup", "max_drop")
DESTRUCTIVE_SHARE = 0.1  # removed |gamma| above this share of the kept median: the prune is not of zeros


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
    dry_run: bool = False,
) -> PruneResult:
    """Remove low-gamma channels and save slim.pt, plan.json, layers.csv and channels.png in project/name.

    model: a .pt, a yaml or a module (never modified). How far, one of: ratio (the fraction of the prunable
    channels to remove), threshold (remove channels with |gamma| below it), plan (a plan.json to apply again), or
    a budget: gflops= / params= (at most that many, counted at imgsz), latency_ms= / speedup= (onnxruntime CPU at
    imgsz), max_drop= (the most mAP50-95 to lose on data=, validated at val_imgsz); a budget finds the level.
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
    if data:
        check(data, task=task_of(model))
    plan_args = {"min_keep": min_keep, "round_to": round_to, "max_group_ratio": max_group_ratio}
    found = None
    if budgets:
        found = find_level(model, budgets, imgsz, data=data, val_imgsz=val_imgsz, **plan_args)
        ratio = found["level"]
        LOGGER.info(
            f"{next(iter(budgets))}={found['value']:g}: level {ratio:g} reaches {found['reached']:.4g} "
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
    elif not isinstance(plan, Plan):
        plan = Plan.load(plan)
    warn_if_destructive(graph, plan)
    prune_in_place(model, graph, plan, compensate=compensate)
    layers = layer_table(before, model, imgsz)

    save_dir = None
    if save and not dry_run:
        save_dir = Path(project) / name
        if isinstance(source, (str, Path)) and Path(source).resolve() == (save_dir / "slim.pt").resolve():
            raise YoloslimError(f"refusing to overwrite the input {source}; choose another project/name")
        with owned(save_dir):
            if (save_dir / "slim.pt").exists() and not exist_ok:
                raise YoloslimError(
                    f"{save_dir} already holds a slim.pt; pass exist_ok=True to replace it, or name=<new folder>"
                )
            from .report import plot_channels  # deferred: report loads matplotlib, only needed when a plot is drawn

            plan.save(save_dir / "plan.json")
            write_table(layers, save_dir / "layers.csv")
            plot_channels(before, model, save_dir / "channels.png")
            save_checkpoint(
                model,
                save_dir / "slim.pt",
                plan=str(save_dir / "plan.json"),  # last: marks done
                source=str(source) if isinstance(source, (str, Path)) else type(source).__name__,
            )
    if verbose:
        LOGGER.info(layers.to_string(index=False))
        total = layers.iloc[-1]
        LOGGER.info(
            f"pruned {plan.removed}/{plan.prunable} prunable channels "
            f"(threshold |gamma| {plan.settings.get('threshold_used', float('nan')):.4g}): "
            f"params {int(total.params_before):,} -> "
            f"{int(total.params_after):,}, GFLOPs {total.gflops_before:.2f} -> {total.gflops_after:.2f} at {imgsz}"
        )
        if save_dir:
            slim = save_dir / "slim.pt"
            LOGGER.info(
                f"saved {slim}, plan.json, layers.csv, channels.png in {save_dir}\n"
                f"train it at its slim width: yoloslim finetune model={slim} data=... (in Python: "
                f"YOLO('{slim}').train(data=..., trainer=yoloslim.SlimTrainer); a plain YOLO(...).train() "
                "rebuilds the model from its yaml at full width)"
            )
    return PruneResult(model, plan, layers, save_dir)


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
