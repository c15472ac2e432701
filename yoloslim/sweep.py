"""The sweep verb: prune at a range of levels (no finetune) and measure each, to choose how far to prune."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from .args import as_list, verb
from .checkpoint import check_stride, load_model, task_of
from .data import check
from .errors import YoloslimError
from .io import atomic_write_text, output_set, owned, refuse_existing
from .latency import interleaved_latency
from .levels import accuracy, check_fits, meaningless_drop, size
from .log import LOGGER
from .onnx_export import export_with_report
from .plan import MAX_GROUP_RATIO, make_plan
from .pruning import SHORTFALL, held_back, limits
from .slimming import graph_of, pruned_copy

DEFAULT_LEVELS = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9"


@verb("sweep")
def sweep(
    model,
    data: str | None = None,
    levels: str | list = DEFAULT_LEVELS,
    imgsz: int = 320,
    batch: int = 16,
    max_drop: float = 0.01,
    min_keep=0.05,
    round_to: int = 1,
    max_group_ratio: float = MAX_GROUP_RATIO,
    runs: int = 20,
    threads: int = 1,
    project: str = "runs/yoloslim",
    name: str = "sweep",
    exist_ok: bool = False,
) -> pd.DataFrame:
    """Prune at each level without finetune and write sweep.csv and sweep.png in project/name.

    Per level: mAP50 and mAP50-95 on data's val split at imgsz, params, GFLOPs at imgsz, the share of the prunable
    channels removed and onnxruntime CPU latency (median of `runs`, the levels timed in turn so load hits them
    alike). The knee is the last level whose pruned mAP50-95 and every lower level's stay within max_drop of the
    unpruned model: prune there (and finetune) or below. min_keep, round_to, max_group_ratio: as for prune.
    exist_ok: replace the files of an earlier sweep in project/name."""

    if not data:
        raise YoloslimError("sweep needs data= (a data.yaml whose val split measures each level)")
    if batch < 1:  # the rule allows training's GPU auto batch; Ultralytics' validator takes a count
        raise YoloslimError(f"batch={batch}: sweep validates, which takes a whole number of images; give e.g. batch=16")
    source = load_model(model)
    check_fits(source, data, check(data, task=task_of(source))["names"])
    check_stride(source, imgsz)
    levels = sorted(float(x) for x in as_list(levels))
    if not runs and threads != 1:
        LOGGER.warning(f"warning: threads={threads} is ignored: runs=0 times nothing")
    plan_args = {"min_keep": min_keep, "round_to": round_to, "max_group_ratio": max_group_ratio}
    graph = graph_of(source)
    plans = {level: make_plan(graph, ratio=level, **plan_args) for level in levels}  # a level that cannot be, now
    out = Path(project) / name
    start = time.perf_counter()
    with owned(out), tempfile.TemporaryDirectory(prefix="yoloslim-sweep-") as tmp:
        refuse_existing(out, exist_ok)
        rows, onnx = [], []
        for level in [0.0, *levels]:
            pruned = source if level == 0 else pruned_copy(source, level, **plan_args)[0]
            removed = plans[level].removed / plans[level].prunable if level else 0.0
            row = {"level": level, "removed": removed, **size(pruned, imgsz), **accuracy(pruned, data, imgsz, batch)}
            if runs:
                onnx.append(export_with_report(pruned, imgsz=imgsz, out=Path(tmp) / f"{level:g}.onnx", runs=0)[0])
            rows.append(row)
            LOGGER.info(
                f"sweep: level {level:g}: mAP50-95 {row['mAP50-95']:.4f}, {row['params']:,} params, "
                f"{row['gflops']:.3g} GFLOPs at {imgsz}"
            )
        if runs:
            for row, latency in zip(rows, interleaved_latency(onnx, imgsz, runs=runs, threads=threads)):
                row["latency_ms"] = latency["median_ms"]
        table = pd.DataFrame(rows)
        short = [f"{lv:g}" for lv, p in plans.items() if held_back(graph, p, lv)[0] > SHORTFALL * p.prunable]
        if short:
            LOGGER.warning(
                f"warning: level {', '.join(short)} removed less than asked (see the 'removed' column): "
                f"{limits(plans[levels[0]].settings)} keep more"
            )
        table["drop"] = table["mAP50-95"].iloc[0] - table["mAP50-95"]
        why = meaningless_drop(float(table["mAP50-95"].iloc[0]), max_drop)
        within = (table["drop"] <= max_drop).cumprod().astype(bool)  # levels up to the first that loses more
        knee = None if why else float(table.level[within].iloc[-1])
        table["knee"] = table.level == knee
        with output_set(out, last="sweep.csv") as staging:  # both files or neither
            atomic_write_text(staging / "sweep.csv", table.to_csv(index=False))
            plot_sweep(table, knee, max_drop, imgsz, staging / "sweep.png")
    LOGGER.info(table.to_markdown(index=False, floatfmt=".4g"))
    took = f"{time.perf_counter() - start:.1f}s for {len(levels)} levels. {out / 'sweep.csv'}, {out / 'sweep.png'}"
    if why:
        LOGGER.warning(f"warning: no knee: {why}; {took}")
    else:
        LOGGER.info(f"knee: level {knee:g} (the last within max_drop={max_drop:g} of the unpruned mAP50-95); {took}")
    return table


def plot_sweep(table: pd.DataFrame, knee: float | None, max_drop: float, imgsz: int, path) -> Path:
    """mAP50-95 per level (left), GFLOPs and latency relative to unpruned (right), the knee marked."""
    from .report import plt, save_figure  # report sets the headless backend

    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.plot(table.level, table["mAP50-95"], marker="o", color="tab:blue", label="mAP50-95 (pruned, no finetune)")
    ax.axhline(
        table["mAP50-95"].iloc[0] - max_drop,
        color="tab:blue",
        linestyle=":",
        linewidth=1,
        label=f"unpruned - max_drop ({max_drop:g})",
    )
    if knee is not None:  # None: the unpruned model scores ~0, so no level can be told apart by its accuracy
        ax.axvline(knee, color="tab:red", linestyle="--", label=f"knee: level {knee:g}")
    ax.set_xlabel("prune level (share of prunable channels removed)")
    ax.set_ylabel("mAP50-95")
    right = ax.twinx()
    right.plot(table.level, table.gflops / table.gflops.iloc[0], marker="s", color="tab:green", label="GFLOPs")
    if "latency_ms" in table:
        right.plot(
            table.level,
            table.latency_ms / table.latency_ms.iloc[0],
            marker="^",
            color="tab:orange",
            label="ORT CPU latency",
        )
    right.set_ylabel("relative to unpruned")
    right.set_ylim(0, 1.05)
    lines = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="lower left")
    ax.set_title(f"Prune sweep at {imgsz} px")
    return save_figure(fig, path)
