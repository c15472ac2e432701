"""Why INT8 gains less from pruning than fp32 does: OpenVINO latency and its per-layer profile, by channel rounding.

    python scripts/int8_speed.py model=yolov8s.yaml data=datasets/trees-tiles160/data.yaml levels=0,0.3,0.6 \
        round_to=8,16,32,64 imgsz=640 out=docs/results/deploy/int8-speed

For each prune level and round_to, a seeded model (its own random gammas: the widths a prune of that level
keeps, not a trained model's accuracy) is exported to OpenVINO fp32 and INT8 (NNCF, calibrated on data's images),
then timed on 1 thread, interleaved: median of `runs`. With the CPU plugin's profiling on, each layer's time is
summed by kind: convolutions (split by whether their output channels are a multiple of 16, the CPU kernels'
channel block), and everything else (concat, resize, the head's decoding, reorders between layouts).
Writes <out>.csv (one row per model and precision) and <out>-layers.csv (time per layer kind).
"""

import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from yoloslim.checkpoint import save_checkpoint
from yoloslim.deploy import export_deployed
from yoloslim.latency import openvino_request
from yoloslim.measure import layer_stats
from yoloslim.pruning import prune
from yoloslim.seeded import seeded_model


def profile(request, x) -> dict:
    """Per-layer time of one inference, summed by kind (ms)."""
    request.infer({0: x})
    out = defaultdict(float)
    for layer in request.get_profiling_info():
        ms = layer.real_time.total_seconds() * 1000
        if layer.node_type == "Convolution":
            out["conv"] += ms
        elif layer.node_type in ("Reorder", "Convert", "FakeQuantize"):
            out["reorder/quantize"] += ms
        else:
            out["other"] += ms
    return dict(out)


def main(model: str, data: str, levels: str, round_to: str, imgsz: int, out: str, runs: int = 30) -> None:
    rows, layers, requests = [], [], {}
    x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="yoloslim-int8-") as tmp:
        for level in [float(v) for v in levels.split(",")]:
            for rounding in [int(v) for v in round_to.split(",")] if level else [1]:
                key = f"{level:g}/{rounding}"
                folder = Path(tmp) / key.replace("/", "-")
                module = seeded_model(model, 0)
                if level:
                    module = prune(module, ratio=level, round_to=rounding, save=False, verbose=False).model
                pt = save_checkpoint(module, folder / "m.pt")
                stats = layer_stats(module, imgsz)
                convs = [m.out_channels for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
                # seeded random weights run far from float64 at 640 px in fp32: the check's tol is loosened to match
                fp32, _ = export_deployed(pt, "openvino", imgsz, False, False, None, 16, folder / "f", False, tol=0.05)
                int8, _ = export_deployed(pt, "openvino", imgsz, True, False, data, 16, folder / "q", False)
                base = {"model": Path(model).stem, "level": level, "round_to": rounding}
                base["gflops"] = float(stats.gflops.sum())
                base["channels not x16"] = sum(c % 16 != 0 for c in convs) / max(len(convs), 1)
                runs_as = (("f32", fp32, "f32"), ("bf16", fp32, "default"), ("int8", int8, "default"))
                for precision, xml, hint in runs_as:
                    path = next(xml.glob("*.xml"))
                    requests[(key, precision)] = openvino_request(path, hint)
                    timing = profile(openvino_request(path, hint, profile=True), x)
                    layers.append({**base, "precision": precision, **timing})
                    rows.append({**base, "precision": precision, "key": key})
                print(base, flush=True)
        for request in requests.values():
            for _ in range(5):
                request.infer({0: x})
        times = defaultdict(list)
        for _ in range(runs):
            for name, request in requests.items():
                start = time.perf_counter()
                request.infer({0: x})
                times[name].append((time.perf_counter() - start) * 1000)
    for row in rows:
        row["ms"] = float(np.median(times[(row.pop("key"), row["precision"])]))
    table = pd.DataFrame(rows)
    for _, part in table.groupby("precision"):
        unpruned = part[part.level == 0].ms.iloc[0]
        table.loc[part.index, "speedup"] = unpruned / part.ms
    table["gflops ratio"] = table.gflops.max() / table.gflops
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(f"{out}.csv", index=False)
    pd.DataFrame(layers).to_csv(f"{out}-layers.csv", index=False)
    print(table.to_markdown(index=False, floatfmt=".3g"))
    print(pd.DataFrame(layers).to_markdown(index=False, floatfmt=".3g"))


if __name__ == "__main__":
    given = dict(arg.split("=", 1) for arg in sys.argv[1:])
    main(
        given["model"],
        given["data"],
        given.get("levels", "0,0.3,0.6"),
        given.get("round_to", "8,16,32,64"),
        int(given.get("imgsz", 640)),
        given.get("out", "docs/results/deploy/int8-speed"),
        int(given.get("runs", 30)),
    )
