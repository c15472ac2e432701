"""The size x prune-level study: `yoloslim compare` model by model, published under docs/results/<study>/.

    python scripts/study.py study=trees data=datasets/trees-tiles160/data.yaml pretrain_epochs=30 batch=8 nbs=8
    python scripts/study.py study=trees-seed1 models=yolov8n.yaml seed=1 data=...
    yoloslim data synth out=datasets/tea-synth-study train=64 val=32
    python scripts/study.py study=synth data=datasets/tea-synth-study/data.yaml pretrain_epochs=20 batch=8 nbs=8

The exact commands of the published studies are in docs/results/<study>/command.txt; docs/benchmarks.md
says how they were sized and what they found.

Each model is one `compare` run into runs/study/<study>/ (resumable: rerun the same command after an
interruption and finished models are not trained again). When a model finishes, its report, stage
records and times are copied to docs/results/<study>/ (commit them as they come; in walltime.csv train_s is
the training time of all its stages, wall_s the time of the last invocation, which also measures and exports).
The table of every finished model is then remade by `compare runs=...`. n models are pruned at LEVELS_N,
others at LEVELS (levels= overrides both). Any other argument goes to every pipeline ('yoloslim help pipeline').
"""

import os
import platform
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import ultralytics

from yoloslim import compare
from yoloslim.cli import main as cli_main
from yoloslim.cli import parse_args

MODELS = "yolov5n.yaml,yolov8n.yaml,yolov5s.yaml,yolov8s.yaml,yolov5m.yaml,yolov8m.yaml"
LEVELS_N, LEVELS = "0.3,0.5,0.6,0.7", "0.3,0.6"
KEPT = ("report.csv", "report.md", "report.png", "stages.json", "metrics.json")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") if os.path.exists("/proc/cpuinfo") else open(os.devnull) as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {len(os.sched_getaffinity(0))} cores, {gpu}; torch {torch.__version__}, "
        f"ultralytics {ultralytics.__version__}, Python {platform.python_version()}"
    )


def summary(table: pd.DataFrame, tolerance: float = 0.01) -> str:
    """Per model: its baseline, the deepest level whose finetuned model holds (mAP50-95 within `tolerance` of the
    baseline, or, where the pipeline measured it, a paired interval that reaches 0: the wider decides), its paired
    difference, the first level that does not hold, how much pruning itself kept (pruned / sparse, at the levels
    within the zeros) and the share sparse training zeroed (levels past it are marked *)."""
    rows = []
    for model, part in table.groupby("model", sort=False):
        part = part.sort_values("level")
        base = part[part.level == 0].iloc[0]
        pruned = part[part.level > 0]
        paired = "delta" in pruned.columns and pruned["delta"].notna().all()
        if paired:
            ok = (pruned["delta"] >= -tolerance) | (pruned["delta_high"] >= 0)
        else:
            ok = pruned["mAP50-95 final"] >= base["mAP50-95 final"] - tolerance
        held, lost = pruned[ok], pruned[~ok]
        best = held.iloc[-1] if len(held) else None
        past = pruned["past_zeros"].fillna(False).astype(bool) if "past_zeros" in pruned.columns else None

        def mark(row, past=past) -> str:
            return f"{row.level:g}" + ("*" if past is not None and past[row.name] else "")

        row = {
            "model": model,
            "baseline mAP50-95": base["mAP50-95 final"],
            "GFLOPs": base.gflops,
            "deepest level that holds": mark(best) if best is not None else "none",
            "its GFLOPs cut": f"{1 - best.gflops / base.gflops:.0%}" if best is not None else "",
            "its mAP50-95": best["mAP50-95 final"] if best is not None else float("nan"),
        }
        if paired:
            row["its delta [95% CI]"] = (
                f"{best.delta:+.3f} [{best.delta_low:+.3f}, {best.delta_high:+.3f}]" if best is not None else ""
            )
            row["held by"] = ("tolerance" if best.delta >= -tolerance else "noise") if best is not None else ""
        row["first level that does not"] = mark(lost.iloc[0]) if len(lost) else "none"
        within = pruned[~past] if past is not None else pruned  # past the zeros pruning is destructive by design
        row["pruned / sparse (min, within the zeros)"] = (within["mAP50-95 pruned"] / within["mAP50-95 sparse"]).min()
        if "zeroed" in base.index and pd.notna(base.zeroed):
            row["zeroed"] = f"{base.zeroed:.0%}"
        rows.append(row)
    return pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3g") + "\n"


def train_seconds(run: Path, wall: float) -> float:
    """Training time of every stage of a pipeline folder, from Ultralytics' results.csv (its `time` column is
    cumulative and survives a resume), so an interrupted model still gets its whole time. The yolov5 repository's
    results.csv has no time: a classic model's training time is its wall time (measuring included)."""
    total, timed = 0.0, False
    for results in run.glob("train/*/results.csv"):
        rows = results.read_text().strip().splitlines()
        header = [h.strip() for h in rows[0].split(",")]
        if "time" in header:
            total, timed = total + float(rows[-1].split(",")[header.index("time")]), True
    return total if timed else wall


def run(argv: list[str]) -> None:
    args = parse_args(argv)
    study = str(args.pop("study", "study"))
    models = str(args.pop("models", MODELS)).split(",")
    fixed_levels = args.pop("levels", None)
    project = Path(str(args.pop("project", "runs/study")))
    results = Path("docs/results") / study
    results.mkdir(parents=True, exist_ok=True)
    times = results / "walltime.csv"
    if not times.exists():
        times.write_text("model,levels,train_s,wall_s,resumed\n")
    command = f"python scripts/study.py {' '.join(argv)}"
    for model in models:
        stem = Path(model).stem
        if (results / stem / "report.csv").exists():
            print(f"study: {stem} is done (docs/results/{study}/{stem}); skipping")
            continue
        levels = fixed_levels or (LEVELS_N if stem.endswith("n") else LEVELS)
        resumed = (project / study / stem).exists()
        start = time.time()
        compare(models=model, levels=levels, project=str(project), name=study, exist_ok=True, **args)  # resumable
        wall = time.time() - start
        shutil.rmtree(results / stem, ignore_errors=True)
        (results / stem).mkdir()
        for name in KEPT:
            if (project / study / stem / name).exists():
                shutil.copy(project / study / stem / name, results / stem / name)
        trained = train_seconds(project / study / stem, wall)
        with times.open("a") as f:
            f.write(f"{stem},{levels.replace(',', ' ')},{trained:.0f},{wall:.0f},{resumed}\n")
    finished = [p for p in sorted(results.iterdir()) if (p / "report.csv").exists()]  # the committed copies
    code = cli_main(
        ["compare", f"runs={','.join(map(str, finished))}", f"project={project}", f"name={study}", "exist_ok=True"]
    )
    if code:
        sys.exit(code)
    for name in ("compare.csv", "compare.md", "compare.png"):
        shutil.copy(project / study / name, results / name)
    log = results / "command.txt"
    lines = log.read_text().splitlines() if log.exists() else []
    for line in (command, f"machine: {machine()}"):
        if line not in lines:
            lines.append(line)
    log.write_text("\n".join(lines) + "\n")
    table = pd.read_csv(results / "compare.csv")
    (results / "summary.md").write_text(summary(table))
    times_table = pd.read_csv(times).to_markdown(index=False)
    (results / "README.md").write_text(
        f"# Study: {study}\n\nMade by `scripts/study.py` (one `yoloslim compare` per model, then `compare runs=`"
        " over all of them). Rows: [compare.md](compare.md) / [compare.csv](compare.csv); plot: compare.png;"
        " each model's own pipeline report and stage records in its folder.\n\n"
        f"```\n{log.read_text()}```\n\n## Per model (finetuned vs its baseline, trained as long)\n\n"
        "delta: finetuned - baseline mAP50-95 on the same val images, 95% paired bootstrap interval; a level holds "
        "within 0.01 or within the noise (the interval reaches 0), whichever is wider; * pruned past the channels "
        "sparse training zeroed.\n\n"
        f"{summary(table)}\n## Time per model (seconds)\n\n{times_table}\n\n![compare](compare.png)\n"
    )


if __name__ == "__main__":
    run(sys.argv[1:])
