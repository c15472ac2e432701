"""The prune and inspect verbs: graph -> plan -> surgery -> slim.pt, plan.json, a layer table and a plot."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from . import YoloslimError
from .log import LOGGER
from .args import verb
from .blocks import build_graph
from .checkpoint import check_stride, load_model, save_checkpoint
from .io import owned
from .graph import Graph, UnsupportedModuleError
from .plan import Plan, make_plan, resolve
from . import surgery


def graph_of(model: nn.Module) -> Graph:
    try:
        return build_graph(model)
    except UnsupportedModuleError as e:
        raise YoloslimError(str(e)) from None


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
        import tempfile

        from ultralytics import YOLO

        if self.slim:
            return YOLO(str(self.slim))
        with tempfile.TemporaryDirectory(prefix="yoloslim-") as tmp:  # YOLO loads from a file; it keeps the module
            return YOLO(str(save_checkpoint(self.model, Path(tmp) / "slim.pt")))


def prune_in_place(model: nn.Module, graph: Graph, plan: Plan, compensate: bool = True) -> None:
    surgery.apply(model, graph, resolve(graph, plan), compensate=compensate)


@verb("prune")
def prune(model, ratio: float | None = None, threshold: float | None = None, min_keep=0.05, round_to: int = 1,
          plan: str | Plan | None = None, compensate: bool = True, imgsz: int = 640, project: str = "runs/yoloslim",
          name: str = "prune", exist_ok: bool = False, save: bool = True, verbose: bool = True) -> PruneResult:
    """Remove low-gamma channels and save slim.pt, plan.json, layers.csv and channels.png in project/name.

    model: a .pt, a yaml or a module (never modified). ratio: the fraction of the prunable channels to remove,
    or threshold: remove channels with |gamma| below it, or plan: a plan.json to apply again. min_keep: the
    least a group keeps (a fraction and/or a channel count); round_to: kept counts are multiples of it.
    imgsz: the size the layer table's GFLOPs are counted at."""
    source = model
    model = load_model(source)
    if not isinstance(source, (str, Path)):
        model = copy.deepcopy(model)  # the caller's module stays as it was
    check_stride(model, imgsz)
    graph = graph_of(model)
    before = copy.deepcopy(model)
    if plan is None:
        plan = make_plan(graph, ratio=ratio, threshold=threshold, min_keep=min_keep, round_to=round_to)
        if plan.removed == 0:
            asked = f"ratio={ratio:g}" if ratio is not None else f"threshold={threshold:g}"
            raise YoloslimError(f"{asked} removes no channel (after min_keep={min_keep} and round_to={round_to}); "
                                "give a larger ratio or threshold")
    elif not isinstance(plan, Plan):
        plan = Plan.load(plan)
    prune_in_place(model, graph, plan, compensate=compensate)
    layers = layer_table(before, model, imgsz)

    save_dir = None
    if save:
        save_dir = Path(project) / name
        if isinstance(source, (str, Path)) and Path(source).resolve() == (save_dir / "slim.pt").resolve():
            raise YoloslimError(f"refusing to overwrite the input {source}; choose another project/name")
        with owned(save_dir):
            if (save_dir / "slim.pt").exists() and not exist_ok:
                raise YoloslimError(f"{save_dir} already holds a slim.pt; pass exist_ok=True to replace it, "
                                    "or name=<new folder>")
            from .report import plot_channels

            plan.save(save_dir / "plan.json")
            write_table(layers, save_dir / "layers.csv")
            plot_channels(before, model, save_dir / "channels.png")
            save_checkpoint(model, save_dir / "slim.pt", plan=str(save_dir / "plan.json"),  # last: marks done
                            source=str(source) if isinstance(source, (str, Path)) else type(source).__name__)
    if verbose:
        LOGGER.info(layers.to_string(index=False))
        total = layers.iloc[-1]
        LOGGER.info(f"pruned {plan.removed}/{plan.prunable} prunable channels "
              f"(threshold |gamma| {plan.settings.get('threshold_used', float('nan')):.4g}): params {int(total.params_before):,} -> "
              f"{int(total.params_after):,}, GFLOPs {total.gflops_before:.2f} -> {total.gflops_after:.2f} at {imgsz}")
        if save_dir:
            slim = save_dir / "slim.pt"
            LOGGER.info(f"saved {slim}, plan.json, layers.csv, channels.png in {save_dir}\n"
                        f"train it at its slim width: yoloslim finetune model={slim} data=... (in Python: "
                        f"YOLO('{slim}').train(data=..., trainer=yoloslim.SlimTrainer); a plain YOLO(...).train() "
                        "rebuilds the model from its yaml at full width)")
    return PruneResult(model, plan, layers, save_dir)


def write_table(table: pd.DataFrame, path: Path) -> None:
    from .io import atomic_write_text

    atomic_write_text(path, table.to_csv(index=False))


@torch.no_grad()
def layer_stats(model: nn.Module, imgsz: int = 640) -> pd.DataFrame:
    """Per top-level layer: output channels, parameters and conv GFLOPs at imgsz (measured at a small
    size and scaled: conv outputs scale exactly with the image area when imgsz is a multiple of 32)."""
    side = 2 * int(max(getattr(model, "stride", torch.tensor([32.0])).max().item(), 32))
    scale = (imgsz / side) ** 2
    flops, channels, hooks = {}, {}, []
    layer_of = {}
    for i, layer in enumerate(model.model):
        for m in layer.modules():
            if isinstance(m, nn.Conv2d):
                layer_of[m] = i

        def keep_channels(module, inputs, output, i=i):
            channels[i] = output.shape[1] if isinstance(output, torch.Tensor) else 0
        hooks.append(layer.register_forward_hook(keep_channels))

    def count(module, inputs, output):
        k = module.weight[0].numel()  # (in / groups) * kh * kw
        flops[layer_of[module]] = flops.get(layer_of[module], 0) + 2 * output.numel() * k * scale / 1e9

    hooks += [m.register_forward_hook(count) for m in layer_of]
    training = model.training
    try:
        model.eval()
        p = next(model.parameters())
        model(torch.zeros(1, 3, side, side, dtype=p.dtype, device=p.device))
    finally:
        for h in hooks:
            h.remove()
        model.train(training)
    rows = [{"layer": i, "module": type(layer).__name__, "channels": channels.get(i, 0),
             "params": sum(q.numel() for q in layer.parameters()), "gflops": flops.get(i, 0.0)}
            for i, layer in enumerate(model.model)]
    return pd.DataFrame(rows)


def layer_table(before: nn.Module, after: nn.Module, imgsz: int = 640) -> pd.DataFrame:
    a, b = layer_stats(before, imgsz), layer_stats(after, imgsz)
    table = a[["layer", "module"]].copy()
    for col in ("channels", "params", "gflops"):
        table[f"{col}_before"], table[f"{col}_after"] = a[col], b[col]
    total = {"layer": "all", "module": "", "channels_before": "", "channels_after": ""}
    for col in ("params_before", "params_after", "gflops_before", "gflops_after"):
        total[col] = table[col].sum()
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return table.round({"gflops_before": 3, "gflops_after": 3})


@verb("inspect")
def inspect(model, verbose: bool = True) -> pd.DataFrame:
    """One row per channel group: size, producers, consumers, importance (|gamma|) and frozen reasons."""
    graph = graph_of(load_model(model))
    rows = []
    for g in graph.groups():
        if not g.producers:
            continue
        imp = g.importance() if g.gammas() else torch.full((g.size,), float("nan"))
        rows.append({"group": g.name, "channels": g.size, "producers": len(g.producers),
                     "consumers": len(g.consumers), "gamma_min": float(imp.min()),
                     "gamma_median": float(imp.median()), "gamma_max": float(imp.max()),
                     "below_1e-2": float((imp < 1e-2).float().mean()),
                     "status": "prunable" if not g.frozen else "frozen: " + g.frozen[0]})
    table = pd.DataFrame(rows)
    if verbose:
        with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 70):
            LOGGER.info(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        live = table[table.status == "prunable"]
        allg = torch.cat([g.importance() for g in graph.groups() if not g.frozen])
        q = torch.quantile(allg, torch.tensor([0.1, 0.5, 0.9])).tolist()
        LOGGER.info(f"{len(live)} prunable groups, {int(live.channels.sum())} channels; {len(table) - len(live)} frozen "
              f"groups, {int(table.channels.sum() - live.channels.sum())} channels. "
              f"|gamma| 10/50/90%: {q[0]:.3g} / {q[1]:.3g} / {q[2]:.3g}; "
              f"below 1e-2: {float((allg < 1e-2).float().mean()):.1%}")
    return table
