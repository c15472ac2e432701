"""Benchmark the pruner on every detection, segment, pose and obb config Ultralytics ships (smallest scale), seeded
gammas, ratio 0.5.

Each (tool, config) runs in a fresh subprocess so its peak RSS is its own. Per config: wall time of graph +
plan + surgery, peak RSS, params and GFLOPs (conv, at 640) before and after; for yoloslim also the masked
equivalence error (random channels of every group zeroed, removed, raw outputs compared in float64) and the
ONNX export of the pruned model checked against onnxruntime (errors in the check's units: boxes in strides,
scores; where random weights leave PyTorch fp32 itself far from float64, that error beside it as fp32_err, and
ONNX passes within twice it). A config yoloslim refuses gets its one-line reason. Where the optional
`torch-pruning` package is installed, its BNScaleImportance global pruner runs on the same model beside ours.

    python scripts/bench_prune.py [--configs yolov8m.yaml ...] [--ratio 0.5] [--timeout 60] [--out F.csv]
    python scripts/bench_prune.py --out docs/results/zoo/bench_prune.csv   # the README's zoo table
    python scripts/bench_prune.py --configs yolov6n.yaml --update --out docs/results/zoo/bench_prune.csv
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

# the heads of the detection yamls, then of the other box-based tasks' (classify, semantic and depth have no boxes)
DETECTORS = ("Detect", "v10Detect", "WorldDetect", "YOLOEDetect", "RTDETRDecoder")
TASK_HEADS = ("Segment", "Pose", "OBB", "Segment26", "Pose26", "OBB26", "YOLOESegment", "YOLOESegment26")


def shipped_configs() -> list[str]:
    """Every detection yaml in the installed Ultralytics, then every segment/pose/obb one, at its smallest scale
    (yolov8-p6.yaml -> yolov8n-p6.yaml)."""
    import yaml
    from ultralytics.cfg import DEFAULT_CFG_PATH

    configs: dict[str, list[str]] = {"detect": [], "task": []}
    for path in sorted((Path(DEFAULT_CFG_PATH).parent / "models").glob("*/*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        head = str(cfg["head"][-1][2])
        if head not in DETECTORS + TASK_HEADS:
            continue
        scales = list(cfg.get("scales") or {})
        name = path.name if len(scales) <= 1 else re.sub(r"(\d+)", rf"\g<1>{scales[0]}", path.name, count=1)
        configs["detect" if head in DETECTORS else "task"].append(name)
    return configs["detect"] + configs["task"]


def torch_pruning(model, ratio: float) -> None:
    import torch
    import torch_pruning as tp

    head = model.model[-1]
    branches = [getattr(head, k, None) for k in ("cv2", "cv3", "cv4", "one2one_cv2", "one2one_cv3", "one2one_cv4")]
    ignored = [seq[-1] for branch in branches if branch is not None for seq in branch] + [head.dfl]
    if hasattr(head, "proto"):
        ignored.append(head.proto.cv3)  # the mask prototypes
    tp.pruner.MetaPruner(
        model,
        torch.zeros(1, 3, 640, 640),
        importance=tp.importance.BNScaleImportance(),
        pruning_ratio=ratio,
        global_pruning=True,
        ignored_layers=ignored,
    ).step()


def measure(tool: str, cfg: str, ratio: float) -> dict:
    import resource
    import tempfile
    import time

    import torch

    from yoloslim import YoloslimError
    from yoloslim.checkpoint import load_model
    from yoloslim.measure import layer_stats

    torch.set_num_threads(2)
    from yoloslim.seeded import calibrate, masked_equivalence_error, seeded_model

    row = {"tool": tool, "model": cfg.removesuffix(".yaml")}
    try:
        load_model(cfg)  # yoloslim's refusal of a model it does not prune, in its own words
        model = seeded_model(cfg)
    except YoloslimError as e:
        if tool != "yoloslim":
            return {**row, "status": "not run: not a DetectionModel"}
        return {**row, "status": f"refused: {str(e).split('not this one: ')[-1]}"}
    row.update(params_before=sum(p.numel() for p in model.parameters()), gflops_before=layer_stats(model).gflops.sum())
    start = time.perf_counter()
    try:
        if tool == "yoloslim":
            from yoloslim.plan import make_plan
            from yoloslim.slimming import graph_of, prune_in_place

            graph = graph_of(model)
            plan = make_plan(graph, ratio=ratio, min_keep=0.05)
            prune_in_place(model, graph, plan)
        else:
            torch_pruning(model, ratio)
        row["seconds"] = time.perf_counter() - start
        row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        with torch.no_grad():
            side = 2 * int(model.stride.max())
            model(torch.zeros(1, 3, side, side))  # the pruned model must still run
        row.update(
            status="ok",
            params_after=sum(p.numel() for p in model.parameters()),
            gflops_after=layer_stats(model).gflops.sum(),
        )
    except Exception as e:  # a competitor's failure is a result, not a crash of the benchmark
        row.update(seconds=time.perf_counter() - start, status=f"error: {type(e).__name__}: {str(e)[:80]}")
        return row
    if tool == "yoloslim":
        from yoloslim.checkpoint import save_checkpoint
        from yoloslim.onnx_export import export_with_report

        row["equivalence_err"] = masked_equivalence_error(cfg)
        calibrate(model)
        with tempfile.TemporaryDirectory() as tmp:
            pt = save_checkpoint(model, Path(tmp) / "slim.pt")
            try:
                row["onnx_err"] = max(export_with_report(pt, imgsz=64)[1]["checked"].values())
            except YoloslimError as e:
                fp32 = getattr(e, "fp32_error", float("nan"))
                if not fp32 > 0:  # not a matter of float32 rounding: the graph is wrong
                    row.update(status="onnx check failed", onnx_err=float("nan"), note=str(e)[:300])
                else:  # random weights can leave PyTorch fp32 itself far from float64 (the check says so)
                    row["onnx_err"] = max(export_with_report(pt, imgsz=64, tol=1e9)[1]["checked"].values())
                    row["fp32_err"] = fp32
                    ok = row["onnx_err"] <= 2 * fp32
                    row["note"] = "fp32 ill-conditioned with these random weights: onnx_err set against fp32_err"
                    if not ok:
                        row["status"] = "onnx check failed"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", help="model yamls (default: every shipped detection config)")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--out", default="runs/bench_prune.csv")
    parser.add_argument("--timeout", type=int, default=60, help="seconds Torch-Pruning gets per config (yoloslim: 600)")
    parser.add_argument("--update", action="store_true", help="replace these configs' rows in --out, keep the rest")
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
    configs = args.configs or shipped_configs()
    rows = []
    for i, cfg in enumerate(configs):
        for tool in tools:
            try:
                out = subprocess.run(
                    [sys.executable, __file__, "--ratio", str(args.ratio), "--child", tool, cfg],
                    capture_output=True,
                    text=True,
                    timeout=args.timeout if tool == "torch-pruning" else 600,
                )
                lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
                row = json.loads(lines[-1]) if lines else {"status": f"crashed: {out.stderr.strip()[-200:]}"}
            except subprocess.TimeoutExpired as e:
                row = {"status": f"timed out after {e.timeout:g} s"}
            row = {"tool": tool, "model": cfg.removesuffix(".yaml"), **row}
            rows.append(row)
            print(
                f"[{i + 1}/{len(configs)}] {row['model']:>18} {tool:<14} {row['status'][:60]:<60} "
                f"{row.get('seconds', float('nan')):6.2f}s {row.get('peak_rss_mb', float('nan')):7.0f} MB",
                flush=True,
            )
    table = pd.DataFrame(rows)
    if args.update and os.path.exists(args.out):  # the other configs' rows as they were, in their order
        old = pd.read_csv(args.out)
        new = {(r["model"], r["tool"]): r for r in rows}
        table = pd.DataFrame(
            [new.pop((r["model"], r["tool"]), r.to_dict()) for _, r in old.iterrows()] + list(new.values())
        )
    cols = ["model", "tool", "status", "seconds", "peak_rss_mb", "params_before", "params_after"]
    cols += ["gflops_before", "gflops_after", "equivalence_err", "onnx_err", "fp32_err", "note"]
    table = table.reindex(columns=cols)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    table.to_csv(args.out, index=False)
    print()
    print(table.drop(columns="note").to_markdown(index=False, floatfmt=".3g"))
    print(f"\nsaved {args.out}")


if __name__ == "__main__":
    main()
