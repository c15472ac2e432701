"""Plots and tables for people: kept channels per layer, (later) the model comparison."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
import pandas as pd
from torch import nn  # noqa: E402

from .io import (
    atomic_write,  # noqa: E402
    atomic_write_text,
)


def conv_widths(model: nn.Module) -> dict[str, int]:
    return {name: m.out_channels for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def plot_channels(before: nn.Module, after: nn.Module, path) -> Path:
    """Bars of each conv's output channels before (light) and after (dark) pruning, in model order."""
    full, slim = conv_widths(before), conv_widths(after)
    names = list(full)
    fig, ax = plt.subplots(figsize=(max(8, len(names) * 0.16), 4.5))
    x = range(len(names))
    ax.bar(x, [full[n] for n in names], color="#c9d7e8", label="before")
    ax.bar(x, [slim.get(n, 0) for n in names], color="#2b6cb0", label="after")
    layer_ticks = {}
    for i, n in enumerate(names):
        layer_ticks.setdefault(n.split(".")[1], i)
    ax.set_xticks(list(layer_ticks.values()), list(layer_ticks.keys()), fontsize=7)
    ax.set_xlabel("layer (convs in model order)")
    ax.set_ylabel("output channels")
    kept = sum(slim.values()) / max(1, sum(full.values()))
    ax.set_title(f"Kept channels per conv: {kept:.0%} of conv channels remain")
    ax.legend()
    return save_figure(fig, path)


def plot_gamma_history(csv_path, path) -> Path:
    """Left: |gamma| histogram per epoch (log |gamma|, colour = share of channels). Right: first vs last epoch."""

    hist = pd.read_csv(csv_path).drop_duplicates("epoch", keep="last").sort_values("epoch")
    edges = np.array([1e-5] + [float(c) for c in hist.columns[1:]])  # the first bin holds |gamma| ~ 0
    counts = hist.iloc[:, 1:].to_numpy(float)
    share = counts / counts.sum(1, keepdims=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    mesh = a.pcolormesh(edges, np.arange(len(hist) + 1) + 0.5, share, cmap="viridis", shading="flat")
    a.set_xscale("log")
    a.set_xlabel("|gamma| (prunable BNs; leftmost bin = exactly 0)")
    a.set_ylabel("epoch")
    a.set_title("Gamma distribution over epochs")
    fig.colorbar(mesh, ax=a, label="share of channels")
    centers = np.sqrt(edges[:-1] * edges[1:])
    for row, label in ((0, f"epoch {hist.epoch.iloc[0]}"), (-1, f"epoch {hist.epoch.iloc[-1]}")):
        b.step(centers, share[row], where="mid", label=label)
    b.set_xscale("log")
    b.set_xlabel("|gamma|")
    b.set_ylabel("share of channels")
    b.set_title("First and last epoch: bimodal means prunable")
    b.legend()
    return save_figure(fig, path)


METRIC_OF_TASK = {"detect": "box", "segment": "mask", "pose": "pose", "obb": "rotated-box"}


def pipeline_report(rows: list[dict], run: Path, task: str = "detect"):
    """report.csv / report.md (one row per model file) and report.png (mAP vs GFLOPs; before vs after finetune).
    mAP50(-95) is the task's metric (mask mAP for segment ...); box mAP50(-95) the boxes', where they differ."""

    table = pd.DataFrame(rows)
    names = ("stage", "level", "params", "gflops", "mAP50", "mAP50-95", "box mAP50-95", "latency_ms", "pt_mb")
    judged = ("zeroed", "past_zeros", "delta", "delta_low", "delta_high", "holds")
    cols = [c for c in (*names, "onnx_mb", *judged) if c in table.columns]
    table = table[cols + [c for c in table.columns if c not in cols]]
    atomic_write_text(Path(run) / "report.csv", table.to_csv(index=False))
    shown = table[cols].copy()
    if "past_zeros" in shown.columns:  # a mark on the pruned levels, blank elsewhere (not 1.0 / nan)
        shown["past_zeros"] = shown["past_zeros"].map(lambda v: {True: "yes", False: "no"}.get(v, ""))
    if "holds" in shown.columns:
        shown["holds"] = shown["holds"].fillna("")
    metric = METRIC_OF_TASK.get(task, task)
    note = f"mAP50 and mAP50-95 are {metric} mAP ({task} model).\n\n" if task != "detect" else ""
    if "delta" in table.columns:
        images = table["val_images"].dropna()
        note += (
            "delta: finetuned - baseline mAP50-95 on the same val images, with its 95% paired bootstrap interval "
            f"[delta_low, delta_high] over the {int(images.iloc[0]) if len(images) else 0} images; holds: within "
            "0.01 of the baseline, or within noise (the interval reaches 0). zeroed: the share of the prunable "
            "channels sparse training left at zero.\n\n"
        )
    if "past_zeros" in table.columns and table["past_zeros"].fillna(False).astype(bool).any():
        note += (
            "past_zeros: these levels pruned channels sparse training had not zeroed (more than the zeroed share): "
            "their accuracy is what finetuning won back, not what pruning kept.\n\n"
        )
    atomic_write_text(Path(run) / "report.md", note + shown.to_markdown(index=False, floatfmt=".4g") + "\n")

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for stage_name, marker in (
        ("pretrained", "D"),
        ("baseline", "*"),
        ("sparse", "s"),
        ("pruned", "v"),
        ("finetuned", "o"),
    ):
        part = table[table.stage == stage_name].sort_values("gflops")
        if len(part):
            a.plot(
                part.gflops,
                part["mAP50-95"],
                marker=marker,
                label=stage_name,
                linestyle="-" if len(part) > 1 else "none",
                markersize=9,
            )
    a.set_xlabel("GFLOPs at 640")
    a.set_ylabel(f"{metric} mAP50-95")
    a.set_title("Accuracy vs compute")
    a.legend()
    pruned = table[table.stage == "pruned"].set_index("level")
    tuned = table[table.stage == "finetuned"].set_index("level")
    levels = [lv for lv in pruned.index if lv in tuned.index]
    bars_before_after(
        b,
        [f"ratio {lv:g}" for lv in levels],
        [pruned.loc[lv, "mAP50-95"] for lv in levels],
        [tuned.loc[lv, "mAP50-95"] for lv in levels],
    )
    b.set_ylabel(f"{metric} mAP50-95")
    save_figure(fig, Path(run) / "report.png")
    return shown


def bars_before_after(ax, labels, before, after) -> None:
    """mAP50-95 right after pruning next to after finetune, one pair of bars per label."""
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], list(before), width=0.4, label="right after pruning")
    ax.bar([i + 0.2 for i in x], list(after), width=0.4, label="after finetune")
    many = len(labels) > 8
    ax.set_xticks(list(x), labels, fontsize=7 if len(labels) > 4 else None, rotation=90 if many else 0)
    ax.set_ylabel("mAP50-95")
    ax.set_title("Before vs after finetune")
    ax.legend()


def save_figure(fig, path) -> Path:
    fig.tight_layout()
    out = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return out
