"""Several models x prune levels in one table: a pipeline per model, then their reports side by side.

Each model gets its own resumable pipeline folder (project/name/<model>), so an interrupted
comparison picks up where it stopped and a finished model is not trained again. `runs=` compares
pipeline folders that already exist without training anything.
"""

from __future__ import annotations

from inspect import signature
from pathlib import Path

import pandas as pd

from .args import as_list, verb
from .errors import YoloslimError
from .flow import banner
from .flow import pipeline as pipeline_verb
from .io import atomic_write_text, output_set, owned, refuse_existing
from .log import LOGGER

MEASURES = ("mAP50", "mAP50-95")
RESULTS = ("compare.csv", "compare.md", "compare.png")


def family(model: str) -> str:
    """'yolov8s' -> 'yolov8', 'yolo11m' -> 'yolo11': one curve per family in the plot."""
    stem = Path(model).stem
    return stem[:-1] if stem[-1:] in "nsmlx" else stem


def read_report(path: Path) -> pd.DataFrame:
    """A pipeline's report.csv, or one line saying it is not one (empty, damaged, edited)."""
    try:
        report = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise YoloslimError(f"{path} is not a readable report ({type(e).__name__}); rerun its pipeline") from None
    missing = [c for c in ("stage", "level", "params", "gflops", *MEASURES) if c not in report.columns]
    if missing:
        raise YoloslimError(f"{path} lacks the columns {', '.join(missing)}; rerun its pipeline ('yoloslim pipeline')")
    numbers = report[["level", "params", "gflops", *MEASURES]].apply(pd.to_numeric, errors="coerce")
    if numbers[["level", "params", "gflops"]].isna().any().any() or report.duplicated(["stage", "level"]).any():
        raise YoloslimError(f"{path} has a non-numeric level, params or gflops, or a stage twice; rerun its pipeline")
    report[numbers.columns] = numbers
    return report


def summarize(model: str, report) -> list[dict]:
    """One row per prune level from a pipeline's report.csv; level 0 is the unpruned baseline."""
    by_stage = {s: part.set_index("level") for s, part in report.groupby("stage")}
    if "baseline" not in by_stage or "sparse" not in by_stage:
        raise YoloslimError(f"the report of {model} has no baseline or sparse row; rerun its pipeline")
    sparse = by_stage["sparse"].iloc[0]
    rows = []
    levels = [0.0] + sorted(by_stage.get("finetuned", by_stage["baseline"]).index.drop(0.0, errors="ignore"))
    unfinished = sorted(set(by_stage.get("pruned", by_stage["baseline"]).index) - {0.0, *levels})
    if unfinished:  # pruned, not finetuned yet: the table has no final model for them
        LOGGER.warning(
            f"warning: {model}: level {', '.join(f'{lv:g}' for lv in unfinished)} has no finetuned row (its pipeline "
            "did not finish) and is left out; rerun the pipeline to finish it"
        )
    for level in levels:
        final = by_stage["baseline"].loc[level] if level == 0 else by_stage["finetuned"].loc[level]
        pruned = by_stage["pruned"].loc[level] if level and "pruned" in by_stage else None
        row = {
            "model": model,
            "family": family(model),
            "level": level,
            "params": int(final["params"]),
            "gflops": float(final["gflops"]),
        }
        for m in MEASURES + tuple(c for c in ("box mAP50-95",) if c in report.columns):  # the task's, then boxes'
            row[f"{m} sparse"] = float(sparse[m])
            row[f"{m} pruned"] = float(pruned[m]) if pruned is not None else float("nan")
            row[f"{m} final"] = float(final[m])
        for col in ("latency_ms", "onnx_mb", "pt_mb"):
            row[col] = float(final[col]) if col in final.index else float("nan")
        row["zeroed"] = float(sparse["zeroed"]) if "zeroed" in sparse.index else float("nan")
        if level:  # how the shipped model stands against the baseline, and whether pruning went past the zeros
            for col in ("past_zeros", "delta", "delta_low", "delta_high", "holds"):
                row[col] = final[col] if col in final.index else None
        rows.append(row)
    return rows


def run_names(models: list[str], folders: bool = False) -> list[str]:
    """A folder name per model: its file's stem, with parent folders prepended until the names are unique
    (a/last.pt and b/last.pt -> a-last, b-last). folders: the paths are pipeline folders, named by their whole name
    (a/yolov8n and b/yolov8n -> a-yolov8n, b-yolov8n: two rows of a table, not one model twice)."""
    paths = [Path(m) for m in models]
    depth = 0
    while True:
        names = [
            "-".join([*p.parent.parts[len(p.parent.parts) - depth :], own] if depth else [own])
            for p, own in ((p, p.name if folders else p.stem) for p in paths)
        ]
        if len(set(names)) == len(names) or depth > max(len(p.parts) for p in paths):
            break
        depth += 1
    if len(set(names)) != len(names):
        raise YoloslimError(f"models={','.join(models)} names a model twice; give each model once")
    return names


@verb("compare", passes_to=pipeline_verb)
def compare(
    models: str | list = "yolov8n.yaml,yolov8s.yaml,yolov8m.yaml",
    levels: str | list = "0.5,0.6,0.7",
    runs: str | list | None = None,
    project: str = "runs/yoloslim",
    name: str = "compare",
    exist_ok: bool = False,
    **pipeline_args,
):
    """Several models x prune levels in one table and plots: a resumable pipeline per model, then
    compare.csv, compare.md and compare.png in project/name.

    Level 0 rows are the unpruned baselines; "final" is the model a user would ship at that level
    (the baseline at 0, the finetuned slim model otherwise). runs=: tabulate finished pipeline folders
    instead of training. Any other argument goes to each pipeline ('yoloslim help pipeline').
    exist_ok: replace an earlier comparison's compare.csv, .md and .png in project/name (the pipelines of an
    interrupted one are resumed without it).
    """

    out = Path(project) / name
    folders = [Path(r) for r in as_list(runs)]
    for f in folders:
        if not (f / "report.csv").is_file():
            raise YoloslimError(f"{f} has no report.csv; give runs= pipeline folders (made by 'yoloslim pipeline')")
        if f.resolve() == out.resolve():
            raise YoloslimError(f"project/name {out} is the runs= folder {f}; choose another name= for the comparison")
    if len({f.resolve() for f in folders}) < len(folders):
        raise YoloslimError(f"runs={','.join(map(str, folders))} names a folder twice; give each run once")
    if folders:  # runs= tabulates finished pipelines: what would configure new ones is not used
        given = {"models": models, "levels": levels, **pipeline_args}
        for key, value in given.items():
            shown = ",".join(as_list(value)) if isinstance(value, (list, tuple)) else value
            if key not in COMPARE_DEFAULTS or as_list(value) != as_list(COMPARE_DEFAULTS[key]):
                LOGGER.warning(f"warning: {key}={shown} is ignored: runs= tabulates pipelines that are already done")
    names = as_list(models)
    folder_names = run_names(names)
    with owned(out):
        refuse_existing(out, exist_ok, RESULTS)
        if not folders:
            for i, (model, folder) in enumerate(zip(names, folder_names), 1):
                banner(f"compare: model {i}/{len(names)}: {model}")
                folders.append(
                    pipeline_verb(model=model, levels=levels, project=str(out), name=folder, **pipeline_args)
                )
        rows = []
        for f, shown_as in zip(folders, run_names([str(f) for f in folders], folders=True)):
            rows += summarize(shown_as, read_report(f / "report.csv"))
        table = pd.DataFrame(rows)
        shown = table.drop(columns=["family"])
        with output_set(out, last="compare.csv") as staging:  # the three files or none
            atomic_write_text(staging / "compare.csv", table.to_csv(index=False))
            atomic_write_text(staging / "compare.md", shown.to_markdown(index=False, floatfmt=".4g") + "\n")
            plot_compare(table, staging / "compare.png")
    LOGGER.info(shown.to_markdown(index=False, floatfmt=".4g"))
    LOGGER.info(f"\ncomparison: {out / 'compare.md'}, {out / 'compare.csv'}, {out / 'compare.png'}")
    return table


COMPARE_DEFAULTS = {k: p.default for k, p in signature(compare).parameters.items()}


def plot_compare(table, path) -> Path:
    """Left: final mAP50-95 vs GFLOPs, one curve per model (colour: family, marker: size), from its baseline
    through its prune levels. Right: mAP before vs after finetune."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    from .report import bars_before_after, plt, save_figure  # deferred (matplotlib); report sets the backend

    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.8))
    colours = {fam: f"C{i}" for i, fam in enumerate(dict.fromkeys(table.family))}
    markers = dict(zip("nsmlx", "os^DP"))
    for model, part in table.groupby("model", sort=False):
        part = part.sort_values("gflops")
        family = part.family.iloc[0]
        size = model[len(family) :] or model
        colour = colours[family]
        a.plot(part.gflops, part["mAP50-95 final"], marker=markers.get(size[:1], "o"), color=colour, label=model)
        for _, r in part.iterrows():
            a.annotate(
                f"{r.level:g}",
                (r.gflops, r["mAP50-95 final"]),
                textcoords="offset points",
                xytext=(3, 3),
                fontsize=7,
                color=colour,
            )
    a.set_xscale("log")
    a.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    a.xaxis.set_major_formatter(ScalarFormatter())
    a.xaxis.set_minor_formatter(NullFormatter())
    a.set_xlabel("GFLOPs at 640 (log)")
    a.set_ylabel("mAP50-95 (finetuned; level 0: baseline)")
    a.set_title("Accuracy vs compute (labels: prune level)")
    a.legend(fontsize=8)
    pruned = table[table.level > 0]
    bars_before_after(
        b,
        [f"{m}\n{lv:g}" for m, lv in zip(pruned.model, pruned.level)],
        pruned["mAP50-95 pruned"],
        pruned["mAP50-95 final"],
    )
    return save_figure(fig, path)
