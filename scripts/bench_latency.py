"""Does pruning buy real speed? ONNX Runtime CPU latency of pruned models against their GFLOPs.

For each --models config and each --ratios level (0 = unpruned): the model with seeded random gammas and betas
(as tests/conftest.py build(): random-init models tie every gamma at 1; running statistics measured on random
images so the outputs depend on the input, see seeded_model), pruned with
yoloslim.pruning.prune(ratio=r, round_to=n), exported with the stock Ultralytics exporter, checked against
onnxruntime (max |diff| vs PyTorch), and timed on onnxruntime CPU with a fixed thread count.

All levels of one model are timed interleaved: one run of each level per round, the order rotating every round
(yoloslim.latency.interleaved_latency), so other load on a shared machine slows every level alike and the
speedups stay fair even when absolute times wander. The machine's load average is printed before and after.

Prints a Markdown table per run and writes it as CSV:

    python scripts/bench_latency.py [--models yolov8n.yaml yolov8s.yaml] [--ratios 0 0.3 0.5 0.7]
        [--round-to 1] [--imgsz 640] [--threads 1] [--runs 50] [--warmup 10] [--out runs/bench_latency.csv]

--round-to 1 16 adds a row per rounding (kept channels rounded up to a multiple of n, see prune's round_to).
GFLOPs count convolutions only (yoloslim.pruning.layer_stats); the head's DFL softmax, box decoding, SiLU,
concats and layout reorders are not in them but are in the latency.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def seeded_model(cfg: str, seed: int = 0, calibrate: int | None = 640):
    """yoloslim.seeded's model, its BN statistics measured at the timed image size on bus.jpg (and its mirror)
    and two random images: statistics measured at another size let activations grow into the hundreds, where
    fp32 itself is off by more than the ONNX check's 1e-3. Latency does not depend on the weights' values."""
    import torch

    from yoloslim.onnx_check import bus_image
    from yoloslim.seeded import seeded_model as seeded

    if not calibrate:
        return seeded(cfg, seed)
    bus = bus_image(calibrate)
    gen = torch.Generator().manual_seed(seed)
    return seeded(
        cfg, seed, calibration=[torch.cat([bus, bus.flip(3), torch.rand(2, 3, calibrate, calibrate, generator=gen)])]
    )


def bench_model(cfg: str, ratios, round_tos, imgsz: int, threads: int, runs: int, warmup: int, seed: int = 0):
    import pandas as pd

    from yoloslim.onnx_export import measure_many
    from yoloslim.pruning import prune

    base = seeded_model(cfg, seed, calibrate=imgsz)
    variants = {("unpruned", 0.0, None): base} if 0 in ratios else {}
    for r in (r for r in ratios if r > 0):
        for n in round_tos:
            label = f"{r:g}" if len(round_tos) == 1 else f"{r:g} /{n}"
            variants[(label, r, n)] = prune(base, ratio=r, round_to=n, imgsz=imgsz, save=False, verbose=False).model
    rows = measure_many(
        {label: m for (label, _, _), m in variants.items()}, imgsz=imgsz, threads=threads, runs=runs, warmup=warmup
    )
    table = pd.DataFrame(rows).rename(columns={"model": "level"})  # measure_many's label is our level
    table.insert(0, "model", cfg.removesuffix(".yaml"))
    table["ratio"] = [r for _, r, _ in variants]
    table["round_to"] = [n for _, _, n in variants]
    ref = table[table.level == "unpruned"]
    if len(ref):
        table["gflops_ratio"] = ref.gflops.iloc[0] / table.gflops
        table["speedup"] = ref.median_ms.iloc[0] / table.median_ms
        table["speedup_per_gflops_ratio"] = table.speedup / table.gflops_ratio
    return table


def main(argv=None):
    import onnxruntime
    import pandas as pd

    from yoloslim.io import atomic_write_text

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["yolov8n.yaml", "yolov8s.yaml"])
    p.add_argument("--ratios", nargs="+", type=float, default=[0, 0.3, 0.5, 0.7], help="0 = unpruned")
    p.add_argument("--round-to", nargs="+", type=int, default=[1], help="prune's round_to; several add rows")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (inter-op is 1)")
    p.add_argument("--runs", type=int, default=50, help="timed runs per level (median reported)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/bench_latency.csv")
    a = p.parse_args(argv)

    import torch

    torch.set_num_threads(a.threads)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, onnxruntime {onnxruntime.__version__},"
        f" {a.threads} thread(s), imgsz {a.imgsz}, median of {a.runs} runs after {a.warmup} warm-up, levels of a "
        f"model timed interleaved; load average before: {os.getloadavg()[0]:.2f}"
    )
    tables = []
    for cfg in a.models:
        tables.append(bench_model(cfg, a.ratios, a.round_to, a.imgsz, a.threads, a.runs, a.warmup, a.seed))
        print(f"{cfg}: done (load average {os.getloadavg()[0]:.2f})", flush=True)
    table = pd.concat(tables, ignore_index=True)
    atomic_write_text(a.out, table.to_csv(index=False))

    show = table.copy()
    show["params"] = show.params.map("{:,}".format)
    columns = [
        "model",
        "level",
        "params",
        "gflops",
        "gflops_ratio",
        "median_ms",
        "p90_ms",
        "speedup",
        "speedup_per_gflops_ratio",
        "max_diff",
        "max_diff_checked",
    ]
    print()
    print(show[[c for c in columns if c in show]].to_markdown(index=False, floatfmt=".3g"))
    print(f"\nload average after: {os.getloadavg()[0]:.2f}; saved {a.out}")
    return table


if __name__ == "__main__":
    main()
