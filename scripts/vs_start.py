"""The study's models against the model the user started from, not only against the baseline trained as long.

    python scripts/vs_start.py study=coco-trees data=datasets/trees-tiles160/data.yaml

From a converged start, more plain training on a fresh schedule can lose accuracy too, so "within 0.01 of the
baseline" can hide a loss against the start. For each model of runs/study/<study>/, the paired difference
(same val images, bootstrap interval) of its baseline and of each finetuned level against pretrained.pt:
docs/results/<study>/vs_start.csv and vs_start.md.
"""

import sys
from pathlib import Path

import pandas as pd

from yoloslim.cli import parse_args
from yoloslim.paired import holds, paired_difference, per_image


def run(argv: list[str]) -> None:
    args = parse_args(argv)
    study, data = str(args["study"]), str(args["data"])
    imgsz, batch = int(args.get("imgsz", 160)), int(args.get("batch", 8))
    project = Path(str(args.get("project", "runs/study"))) / study
    rows = []
    for run_dir in sorted(p for p in project.iterdir() if (p / "pretrained.pt").exists()):
        start = per_image(run_dir / "pretrained.pt", data, imgsz, batch)
        levels = sorted(run_dir.glob("slim-*-ft.pt"), key=lambda p: float(p.stem.split("-")[1]))
        for name, path in [("baseline", run_dir / "baseline.pt"), *((p.stem.split("-")[1], p) for p in levels)]:
            paired = paired_difference(start, per_image(path, data, imgsz, batch))
            rows.append({"model": run_dir.name, "vs start": name, **paired, "holds": holds(paired)})
            print(rows[-1])
    table = pd.DataFrame(rows)
    out = Path("docs/results") / study
    table.to_csv(out / "vs_start.csv", index=False)
    (out / "vs_start.md").write_text(table.to_markdown(index=False, floatfmt=".4g") + "\n")


if __name__ == "__main__":
    run(sys.argv[1:])
