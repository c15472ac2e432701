"""Benchmark choosing the prune level: sweep, budgets, the destructive-prune warning, the per-group cap.

On the generated dataset: yolov8n trained plainly (--pretrain-epochs), then sparse-trained by `yoloslim sparse`
(--sparse-epochs, the pipeline's sr_share=0.6); both are kept in --work and reused when there. Then:

- sweep of the sparse model at --imgsz over 9 levels: its wall time and its table;
- max_drop=0.01: the level prune picks, its pruned mAP50-95 and the next level's (the boundary must hold);
- gflops= / params= budgets on yolov5n, yolov8n, yolo11n (from yaml: sizes do not need training): reached
  vs asked, and whether one rounding step (the next lower level) would not have fit;
- the warning on the plainly trained model, and none at the sparse model's zeros;
- the per-group cap (max_group_ratio 0.8, the default; 0.9; 1.0 = none): mAP50-95 of the plain model pruned at
  0.3 and of the sparse model at 0.7, and the largest share any one group lost.

Writes docs/results/levels/{sweep.csv,sweep.png,budgets.csv,summary.csv} and prints them.

    python scripts/bench_levels.py [--imgsz 320] [--pretrain-epochs 6] [--sparse-epochs 10]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import time
from contextlib import redirect_stdout
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
OUT = Path("docs/results/levels")


def warned(fn) -> bool:
    """Whether fn() logged the destructive-prune warning."""
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        fn()
    return "are not near zero" in buffer.getvalue()


def main() -> None:
    import pandas as pd

    import yoloslim
    from yoloslim.checkpoint import load_model
    from yoloslim.levels import GRID, accuracy, size
    from yoloslim.slimming import pruned_copy

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--train-imgsz", type=int, default=160)
    p.add_argument("--pretrain-epochs", type=int, default=6)
    p.add_argument("--sparse-epochs", type=int, default=10)
    p.add_argument("--data", default="datasets/tea-synth/data.yaml")
    p.add_argument("--work", default="runs/bench_levels")
    a = p.parse_args()
    work = Path(a.work)
    if not Path(a.data).exists():
        yoloslim.synth_data(Path(a.data).parent)
    common = {
        "imgsz": a.train_imgsz,
        "batch": 16,
        "nbs": 16,
        "workers": 2,
        "seed": 0,
        "plots": False,
        "val": False,
        "project": str(work.resolve()),
        "exist_ok": True,
    }
    plain = work / "plain" / "weights" / "best.pt"
    if not plain.exists():
        yoloslim.train("yolov8n.yaml", a.data, epochs=a.pretrain_epochs, name="plain", **common)
    sparse_pt = work / "sparse" / "sparse.pt"  # where yoloslim sparse copies best.pt
    if not sparse_pt.exists():
        yoloslim.sparse(plain, a.data, epochs=a.sparse_epochs, sr_share=0.6, name="sparse", warmup_epochs=0, **common)

    OUT.mkdir(parents=True, exist_ok=True)
    summary = {
        "imgsz": a.imgsz,
        "pretrain_epochs": a.pretrain_epochs,
        "sparse_epochs": a.sparse_epochs,
        "train_imgsz": a.train_imgsz,
    }

    start = time.perf_counter()
    table = yoloslim.sweep(sparse_pt, data=a.data, imgsz=a.imgsz, project=str(work), name="sweep", exist_ok=True)
    summary["sweep_seconds_9_levels"] = round(time.perf_counter() - start, 1)
    table.to_csv(OUT / "sweep.csv", index=False)
    shutil.copyfile(work / "sweep" / "sweep.png", OUT / "sweep.png")

    start = time.perf_counter()
    picked = yoloslim.prune(sparse_pt, max_drop=0.01, data=a.data, val_imgsz=a.imgsz, save=False, verbose=False)
    found = picked.plan.settings["budget"]
    summary["max_drop_seconds"] = round(time.perf_counter() - start, 1)
    model = load_model(sparse_pt)
    level = found["level"]
    following = GRID[GRID.index(level) + 1] if level < GRID[-1] else None
    summary.update(
        max_drop=0.01,
        sparse_map=found["unpruned"],
        picked_level=level,
        picked_map=found["reached"],
        next_level=following,
        next_map=accuracy(pruned_copy(model, following)[0], a.data, a.imgsz)["mAP50-95"] if following else None,
    )
    summary["boundary_holds"] = found["unpruned"] - summary["picked_map"] <= 0.01 and (
        following is None or found["unpruned"] - summary["next_map"] > 0.01
    )

    rows = []
    for cfg in ("yolov5n.yaml", "yolov8n.yaml", "yolo11n.yaml"):
        base = load_model(cfg)
        full = size(base, 640)
        for key, share in (("gflops", 0.5), ("params", 0.4)):
            budget = full[key] * share
            result = yoloslim.prune(base, save=False, verbose=False, round_to=8, **{key: budget})
            got = result.plan.settings["budget"]
            lower = GRID[GRID.index(got["level"]) - 1] if got["level"] > GRID[0] else None
            lower_value = size(pruned_copy(base, lower, round_to=8)[0], 640)[key] if lower else None
            rows.append(
                {
                    "model": cfg,
                    "budget": key,
                    "asked": budget,
                    "reached": got["reached"],
                    "unpruned": got["unpruned"],
                    "level": got["level"],
                    "met": got["reached"] <= budget,
                    "one_step_lower": lower,
                    "one_step_lower_value": lower_value,
                    "one_step_lower_fits": lower_value is not None and lower_value <= budget,
                }
            )
    budgets = pd.DataFrame(rows)
    budgets.to_csv(OUT / "budgets.csv", index=False)

    summary["warns_on_plain_model"] = warned(lambda: yoloslim.prune(plain, ratio=0.3, save=False))
    zeros = float((torch_gammas(model) < 1e-3).float().mean())
    summary["sparse_share_below_1e-3"] = round(zeros, 3)
    summary["warns_at_sparse_zeros"] = warned(lambda: yoloslim.prune(sparse_pt, threshold=1e-3, save=False))

    dense = load_model(plain)
    summary["plain_map"] = accuracy(dense, a.data, a.imgsz)["mAP50-95"]
    for name, source, level in (("plain", dense, 0.3), ("sparse", model, 0.7)):
        for cap in (0.8, 0.9, 1.0):
            capped, plan = pruned_copy(source, level, max_group_ratio=cap)
            most = max(1 - len(k) / plan.sizes[n] for n, k in plan.kept.items())
            summary[f"{name}_at_{level:g}_cap_{cap:g}_map"] = accuracy(capped, a.data, a.imgsz)["mAP50-95"]
            summary[f"{name}_at_{level:g}_cap_{cap:g}_most_removed_of_a_group"] = round(most, 3)
    pd.DataFrame([summary]).to_csv(OUT / "summary.csv", index=False)
    logging.getLogger("yoloslim").info(
        "\n" + budgets.to_markdown(index=False, floatfmt=".4g") + "\n\n" + pd.Series(summary).to_string()
    )


def torch_gammas(model):
    import torch

    from yoloslim.slimming import graph_of

    return torch.cat([g.importance() for g in graph_of(model).groups() if not g.frozen_reasons])


if __name__ == "__main__":
    main()
