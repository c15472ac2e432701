"""Benchmark sparse training: plain vs sparse yolov8n on the generated dataset, same epochs and seed.

Like a user's flow, both start from the same trained model (yolov8n.yaml trained --pretrain-epochs
first; see yoloslim/flow.py for why sparse training starts from a trained model). Prints mAP50-95
of both, the share of prunable gammas below 1e-2 and 1e-3, the per-epoch time overhead (the penalty's
own time, which the trainer measures, and the wall-clock difference between the runs, which also holds
whatever else the machine did), and where the gamma plot is; then short sparse runs on yolov5n and yolo11n.

A third yolov8n run, "zeros from the start", separates what sparse training costs from what the
channels it zeroed cost: the starting model pruned at the sparse model's zeros (|gamma| < 1e-2) and
trained for as many epochs, the way plain training is: plain minus this run is the slim network's own
cost at this budget (its channels gone from the first epoch), and this run minus the sparse one is what
finding the zeros during training cost on top.

    python scripts/bench_sparse.py [--pretrain-epochs 20] [--epochs 20] [--sr <default>] [--penalty wide|lowest|l1]
                                   [--imgsz 160]

Both runs use SGD without warm-up (what sparse training picks for optimizer=auto, see
yoloslim/trainer.py), so the only difference between them is the sparsity penalty.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")


def epoch_seconds(run: Path, column: str = "time") -> float:
    """Median per-epoch time (wall time, or the penalty's own time with column="sparsity/penalty_s"), leaving
    out the first epoch (start-up) and the last (it validates): the median, because other work on a shared
    machine stretches a few epochs."""
    import numpy as np
    import pandas as pd

    t = pd.read_csv(run / "results.csv")[column].to_numpy()
    per_epoch = np.diff(t) if column == "time" else t[1:]
    middle = per_epoch[:-1]  # epochs 2 .. n-1
    return float(np.median(middle)) if len(middle) else float("nan")


def main() -> None:
    import pandas as pd

    from yoloslim.data import synth
    from yoloslim.levels import accuracy
    from yoloslim.pruning import prune
    from yoloslim.trainer import PENALTIES, SPARSE_DEFAULTS, finetune, sparse, train

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrain-epochs", type=int, default=20)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--sr", type=float, default=SPARSE_DEFAULTS["sr"])
    p.add_argument("--penalty", choices=PENALTIES, default=SPARSE_DEFAULTS["penalty"])
    p.add_argument("--imgsz", type=int, default=160)
    p.add_argument("--data", default="datasets/tea-synth/data.yaml")
    p.add_argument("--nbs", type=int, default=16, help="images per optimizer step (as the pipeline uses)")
    p.add_argument("--short-epochs", type=int, default=3, help="epochs of the yolov5n / yolo11n runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/bench_sparse")
    a = p.parse_args()

    data = Path(a.data)
    if not data.exists():
        data = synth(data.parent)
    common = {
        "imgsz": a.imgsz,
        "batch": 16,
        "nbs": a.nbs,
        "workers": 2,
        "device": "cpu",
        "seed": a.seed,
        "deterministic": True,
        "project": a.out,
        "exist_ok": True,
        "plots": False,
        "val": False,
    }
    pretrained = Path(a.out) / "pretrain" / "weights" / "best.pt"
    if not pretrained.exists():
        train("yolov8n.yaml", data, epochs=a.pretrain_epochs, name="pretrain", **common)
    rows = []
    for kind in ("plain", "sparse", "zeros from the start"):
        start = time.time()
        tuned = {**common, "warmup_epochs": 0, "optimizer": "SGD", "name": kind.replace(" ", "-")}
        if kind == "plain":
            best = train(pretrained, data, epochs=a.epochs, **tuned)
        elif kind == "sparse":
            best = sparse_pt = sparse(pretrained, data, epochs=a.epochs, sr=a.sr, penalty=a.penalty, **tuned)
        else:
            zeros = prune(sparse_pt, threshold=1e-2, save=False, verbose=False).plan
            slim = prune(pretrained, plan=zeros, project=a.out, name="zeros-from-start", exist_ok=True, verbose=False)
            best = finetune(slim.save_dir / "slim.pt", data, epochs=a.epochs, **tuned)
        run = Path(a.out) / tuned["name"]
        res = pd.read_csv(run / "results.csv")
        rows.append(
            {
                "model": "yolov8n",
                "run": kind,
                "epochs": f"{a.pretrain_epochs}+{a.epochs}",
                **accuracy(best, data, a.imgsz, batch=16),
                "gamma<1e-2": res.get("sparsity/gamma<1e-2", pd.Series([None])).iloc[-1],
                "gamma<1e-3": res.get("sparsity/gamma<1e-3", pd.Series([None])).iloc[-1],
                "s/epoch": epoch_seconds(run),
                "penalty s/epoch": epoch_seconds(run, "sparsity/penalty_s") if kind == "sparse" else 0.0,
                "wall_s": time.time() - start,
            }
        )
    for cfg in ("yolov5n.yaml", "yolo11n.yaml"):
        name = f"sparse-{cfg.removesuffix('.yaml')}"
        sparse(cfg, data, epochs=a.short_epochs, sr=a.sr, penalty=a.penalty, name=name, **common)
        res = pd.read_csv(Path(a.out) / name / "results.csv")
        rows.append(
            {
                "model": cfg.removesuffix(".yaml"),
                "run": "sparse",
                "epochs": a.short_epochs,
                "mAP50": res["metrics/mAP50(B)"].iloc[-1],
                "mAP50-95": res["metrics/mAP50-95(B)"].iloc[-1],
                "gamma<1e-2": res["sparsity/gamma<1e-2"].iloc[-1],
                "gamma<1e-3": res["sparsity/gamma<1e-3"].iloc[-1],
                "s/epoch": epoch_seconds(Path(a.out) / name),
                "penalty s/epoch": epoch_seconds(Path(a.out) / name, "sparsity/penalty_s"),
            }
        )
    table = pd.DataFrame(rows)
    table.to_csv(Path(a.out) / "bench_sparse.csv", index=False)
    print(table.to_markdown(index=False, floatfmt=".4g"))
    plain, sp, start_slim = rows[0], rows[1], rows[2]
    print(
        f"\n{a.penalty} sr={a.sr}: sparse mAP50-95 {sp['mAP50-95']:.4f} vs plain {plain['mAP50-95']:.4f} "
        f"(diff {sp['mAP50-95'] - plain['mAP50-95']:+.4f}); prunable gammas < 1e-2: {sp['gamma<1e-2']:.1%}; "
        f"per-epoch time overhead: penalty {sp['penalty s/epoch'] / (sp['s/epoch'] - sp['penalty s/epoch']):+.1%} "
        f"(timed inside the trainer), wall clock {sp['s/epoch'] / plain['s/epoch'] - 1:+.1%} (sparse vs plain "
        "epochs, with the machine's noise)"
    )
    print(
        f"the sparse model's zeros pruned from the start and trained as long: mAP50-95 {start_slim['mAP50-95']:.4f} "
        f"(diff {start_slim['mAP50-95'] - plain['mAP50-95']:+.4f} vs plain: the slim network's own cost; sparse "
        f"training's on top of it: {sp['mAP50-95'] - start_slim['mAP50-95']:+.4f})"
    )
    print(f"gamma plot: {Path(a.out) / 'sparse' / 'gammas.png'}")


if __name__ == "__main__":
    main()
