"""Several models x prune levels in one table: a pipeline per model, then their reports side by side.

Each model gets its own resumable pipeline folder (project/name/<model>), so an interrupted
comparison picks up where it stopped and a finished model is not trained again. `runs=` compares
pipeline folders that already exist without training anything.
"""

from __future__ import annotations

from pathlib import Path

from . import YoloslimError
from .io import atomic_write_text
from .pipeline import as_list

MEASURES = ("mAP50", "mAP50-95")


def family(model: str) -> str:
    """'yolov8s' -> 'yolov8', 'yolo11m' -> 'yolo11': one curve per family in the plot."""
    stem = Path(model).stem
    return stem[:-1] if stem[-1:] in "nsmlx" else stem


def summarize(model: str, report) -> list[dict]:
    """One row per prune level from a pipeline's report.csv; level 0 is the unpruned baseline."""
    by_stage = {s: part.set_index("level") for s, part in report.groupby("stage")}
    if "baseline" not in by_stage or "sparse" not in by_stage:
        raise YoloslimError(f"the report of {model} has no baseline or sparse row; rerun its pipeline")
    sparse = by_stage["sparse"].iloc[0]
    rows = []
    levels = [0.0] + sorted(by_stage.get("finetuned", by_stage["baseline"]).index.drop(0.0, errors="ignore"))
    for level in levels:
        final = by_stage["baseline"].loc[level] if level == 0 else by_stage["finetuned"].loc[level]
        pruned = by_stage["pruned"].loc[level] if level and "pruned" in by_stage else None
        row = {"model": model, "family": family(model), "level": level,
               "params": int(final["params"]), "gflops": float(final["gflops"])}
        for m in MEASURES:
            row[f"{m} sparse"] = float(sparse[m])
            row[f"{m} pruned"] = float(pruned[m]) if pruned is not None else float("nan")
            row[f"{m} final"] = float(final[m])
        for col in ("latency_ms", "onnx_mb", "pt_mb"):
            row[col] = float(final[col]) if col in final.index else float("nan")
        rows.append(row)
    return rows


def compare(models="yolov8n.yaml,yolov8s.yaml,yolov8m.yaml", levels="0.5,0.6,0.7", runs=None,
            project: str = "runs/yoloslim", name: str = "compare", **pipeline_args):
    """Run (or reuse) a pipeline per model and write compare.csv, compare.md and compare.png.

    Level 0 rows are the unpruned baselines; "final" is the model a user would ship at that level
    (the baseline at 0, the finetuned slim model otherwise). Extra keyword arguments go to each pipeline.
    """
    import pandas as pd

    out = Path(project) / name
    folders = [Path(r) for r in as_list(runs)]
    if folders:
        for f in folders:
            if not (f / "report.csv").exists():
                raise YoloslimError(f"{f} has no report.csv; give runs= pipeline folders (made by 'yoloslim pipeline')")
    else:
        from .pipeline import banner, pipeline

        names = as_list(models)
        if not names:
            raise YoloslimError("models= is empty; give e.g. models=yolov8n.yaml,yolov8s.yaml")
        for i, model in enumerate(names, 1):
            banner(f"compare: model {i}/{len(names)}: {model}")
            folders.append(pipeline(model=model, levels=levels, project=str(out), name=Path(model).stem,
                                    **pipeline_args))
    rows = []
    for f in folders:
        report = pd.read_csv(f / "report.csv")
        rows += summarize(f.name, report)
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "compare.csv", table.to_csv(index=False))
    shown = table.drop(columns=["family"])
    atomic_write_text(out / "compare.md", shown.to_markdown(index=False, floatfmt=".4g") + "\n")
    plot_compare(table, out / "compare.png")
    print(shown.to_markdown(index=False, floatfmt=".4g"))
    print(f"\ncomparison: {out / 'compare.md'}, {out / 'compare.csv'}, {out / 'compare.png'}")
    return table


def plot_compare(table, path) -> Path:
    """Left: final mAP50-95 vs GFLOPs, one curve per model family. Right: mAP before vs after finetune."""
    from .report import bars_before_after, plt, save_figure  # report sets the headless backend

    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.8))
    for fam, part in table.groupby("family", sort=False):
        part = part.sort_values("gflops")
        line, = a.plot(part.gflops, part["mAP50-95 final"], marker="o", label=fam)
        for _, r in part.iterrows():
            size = r.model[len(r.family):] or r.model
            a.annotate(f"{size} {r.level:g}", (r.gflops, r["mAP50-95 final"]), textcoords="offset points",
                       xytext=(3, 3), fontsize=7, color=line.get_color())
    a.set_xscale("log")
    a.set_xlabel("GFLOPs at 640 (log)")
    a.set_ylabel("mAP50-95")
    a.set_title("Accuracy vs compute (labels: size, prune level)")
    a.legend()
    pruned = table[table.level > 0]
    bars_before_after(b, [f"{m}\n{lv:g}" for m, lv in zip(pruned.model, pruned.level)], pruned["mAP50-95 pruned"],
                      pruned["mAP50-95 final"])
    return save_figure(fig, path)
