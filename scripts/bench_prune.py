"""Benchmark the pruner: yolov5/v8/11 x n/s/m, seeded random gammas, ratio 0.5.

Each (tool, config) runs in a fresh subprocess so its peak RSS is its own. Prints a Markdown table:
wall time of graph + plan + surgery, peak RSS, params and GFLOPs (conv, at 640) before and after.
Where the optional `torch-pruning` package is installed, its BNScaleImportance global pruner runs on
the same model beside ours.

    python scripts/bench_prune.py [--configs yolov8m.yaml ...] [--ratio 0.5] [--out runs/bench_prune.csv]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("YOLO_OFFLINE", "1")

CONFIGS = [f"{family}{scale}.yaml" for family in ("yolov5", "yolov8", "yolo11") for scale in "nsm"]


def measure(tool: str, cfg: str, ratio: float) -> dict:
    import resource
    import time

    import torch

    from yoloslim.measure import layer_stats

    torch.set_num_threads(2)
    from yoloslim.seeded import seeded_model

    model = seeded_model(cfg)
    params0 = sum(p.numel() for p in model.parameters())
    gflops0 = layer_stats(model).gflops.sum()
    row = {"tool": tool, "model": cfg.removesuffix(".yaml"), "params_before": params0, "gflops_before": gflops0}
    start = time.perf_counter()
    try:
        if tool == "yoloslim":
            from yoloslim.plan import make_plan
            from yoloslim.slimming import graph_of, prune_in_place

            graph = graph_of(model)
            plan = make_plan(graph, ratio=ratio, min_keep=0.05)
            prune_in_place(model, graph, plan)
        else:
            import torch_pruning as tp

            head = model.model[-1]
            ignored = [seq[-1] for seq in (*head.cv2, *head.cv3)] + [head.dfl]
            pruner = tp.pruner.MetaPruner(
                model,
                torch.zeros(1, 3, 640, 640),
                importance=tp.importance.BNScaleImportance(),
                pruning_ratio=ratio,
                global_pruning=True,
                ignored_layers=ignored,
            )
            pruner.step()
        row["seconds"] = time.perf_counter() - start
        with torch.no_grad():
            model(torch.zeros(1, 3, 64, 64))  # the pruned model must still run
        row.update(
            status="ok",
            params_after=sum(p.numel() for p in model.parameters()),
            gflops_after=layer_stats(model).gflops.sum(),
        )
    except Exception as e:  # a competitor's failure is a result, not a crash of the benchmark
        row.update(seconds=time.perf_counter() - start, status=f"error: {type(e).__name__}: {str(e)[:80]}")
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=CONFIGS)
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--out", default="runs/bench_prune.csv")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], args.child[1], args.ratio)))
        return

    import importlib.util

    import pandas as pd

    tools = ["yoloslim"] + (["torch-pruning"] if importlib.util.find_spec("torch_pruning") else [])
    if len(tools) == 1:
        print("torch-pruning is not installed: benchmarking yoloslim alone (pip install torch-pruning to compare)")
    rows = []
    for cfg in args.configs:
        for tool in tools:
            out = subprocess.run(
                [sys.executable, __file__, "--ratio", str(args.ratio), "--child", tool, cfg],
                capture_output=True,
                text=True,
            )
            lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
            row = (
                json.loads(lines[-1])
                if lines
                else {"tool": tool, "model": cfg, "status": f"crashed: {out.stderr[-200:]}"}
            )
            rows.append(row)
            print(
                f"{row['model']:>8} {tool:<14} {row['status'][:60]:<60} {row.get('seconds', float('nan')):6.2f}s "
                f"{row.get('peak_rss_mb', float('nan')):7.0f} MB",
                flush=True,
            )
    table = pd.DataFrame(rows)
    cols = [
        "model",
        "tool",
        "status",
        "seconds",
        "peak_rss_mb",
        "params_before",
        "params_after",
        "gflops_before",
        "gflops_after",
    ]
    table = table.reindex(columns=cols)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    table.to_csv(args.out, index=False)
    print()
    print(table.to_markdown(index=False, floatfmt=".3g"))
    print(f"\nsaved {args.out}")


if __name__ == "__main__":
    main()
