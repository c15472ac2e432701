"""The deployment table: each model of finished pipelines (the baseline and every finetuned level) on the runtimes
and precisions users deploy with, latency and accuracy side by side. Writes docs/results/deploy/<name>.csv/.md.

    python scripts/deploy_table.py runs=runs/study/coco-trees/yolov8n,runs/study/coco-trees/yolov8s \
        data=datasets/trees-tiles160/data.yaml imgsz=640 val_imgsz=160 name=coco-trees

Latency: median ms of `runs` runs at imgsz (static 1x3xNxN), per thread count, rounds interleaved over the models
so drift of the machine hits all alike: ONNX Runtime fp32 and static INT8, OpenVINO f32 (INFERENCE_PRECISION_HINT=
f32), OpenVINO default (bf16 where the CPU has it) and OpenVINO INT8 (NNCF), both INT8 calibrated on data's train
images. mAP50-95: each OpenVINO export through its runtime (yoloslim export's check, data=) at val_imgsz, the size
the models were trained at.
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from yoloslim.checkpoint import load_model, save_checkpoint
from yoloslim.deploy import export_deployed, exported_as
from yoloslim.latency import openvino_request
from yoloslim.measure import layer_stats
from yoloslim.onnx_check import ort_session

PRECISIONS = ("ort fp32", "ort int8", "ov f32", "ov default", "ov int8")


def stage_models(run: Path) -> dict[str, Path]:
    """The baseline and the finetuned models of a pipeline folder, by level."""
    out = {"0": run / "baseline.pt"}
    for ft in sorted(run.glob("slim-*-ft.pt"), key=lambda p: float(p.name.split("-")[1])):
        out[ft.name.split("-")[1]] = ft
    return {level: path for level, path in out.items() if path.exists()}


def openvino_runner(xml: Path, threads: int, precision: str):
    request = openvino_request(xml, precision, threads)
    return lambda x: request.infer({0: x})


def ort_runner(onnx: Path, threads: int):
    session = ort_session(onnx, threads)
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def timed(runners: dict, imgsz: int, runs: int, warmup: int = 10) -> dict:
    """Median ms per runner, rounds interleaved."""
    x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
    for run in runners.values():
        for _ in range(warmup):
            run(x)
    times = {key: [] for key in runners}
    for _ in range(runs):
        for key, run in runners.items():
            start = time.perf_counter()
            run(x)
            times[key].append((time.perf_counter() - start) * 1000)
    return {key: float(np.median(t)) for key, t in times.items()}


def main(runs: str, data: str, imgsz: int = 640, val_imgsz: int = 160, name: str = "deploy", repeats: int = 50):
    rows, runners = [], {1: {}, 2: {}}
    with tempfile.TemporaryDirectory(prefix="yoloslim-deploy-") as tmp:
        for run in [Path(r) for r in runs.split(",")]:
            for level, pt in stage_models(run).items():
                key = f"{run.name} {float(level):g}"
                folder = Path(tmp) / key.replace(" ", "-")
                folder.mkdir()
                module = load_model(pt)
                row = {"key": key, "model": run.name, "level": float(level)}
                row["params"] = sum(p.numel() for p in module.parameters())
                row["gflops"] = float(layer_stats(module, imgsz).gflops.sum())
                for precision, int8 in (("fp32", False), ("int8", True)):  # accuracy at the trained size
                    _, report = export_deployed(
                        pt, "openvino", val_imgsz, int8, False, data, 16, folder / f"val-{precision}", False
                    )
                    # through the stock runtime: OpenVINO's CPU default (bf16 where the CPU has it) for the fp32 IR
                    row[f"mAP50-95 ov {'int8' if int8 else 'default'}"] = report["mAP50-95"]
                    row["mAP50-95 pt"] = report["pt mAP50-95"]
                onnx, _ = export_deployed(pt, "onnx", imgsz, False, False, None, 16, folder / "m.onnx", False)
                onnx8 = exported_as(save_checkpoint(module, folder / "q8.pt"), "onnx", imgsz, True, False, data)
                ir, _ = export_deployed(pt, "openvino", imgsz, False, False, None, 16, folder / "ir", False)
                q, _ = export_deployed(pt, "openvino", imgsz, True, False, data, 16, folder / "q", False)
                for threads in (1, 2):
                    runners[threads][(key, "ort fp32")] = ort_runner(onnx, threads)
                    runners[threads][(key, "ort int8")] = ort_runner(onnx8, threads)
                    runners[threads][(key, "ov f32")] = openvino_runner(next(ir.glob("*.xml")), threads, "f32")
                    runners[threads][(key, "ov default")] = openvino_runner(next(ir.glob("*.xml")), threads, "default")
                    runners[threads][(key, "ov int8")] = openvino_runner(next(q.glob("*.xml")), threads, "default")
                rows.append(row)
                print(row, flush=True)
        latencies = {threads: timed(r, imgsz, repeats) for threads, r in runners.items()}
    for row in rows:
        key = row.pop("key")
        for threads, times in latencies.items():
            for precision in PRECISIONS:
                row[f"{precision} ms {threads}t"] = times[(key, precision)]
    table = pd.DataFrame(rows)
    out = Path("docs/results/deploy")
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.md").write_text(table.to_markdown(index=False, floatfmt=".4g") + "\n")
    print(table.to_markdown(index=False, floatfmt=".4g"))
    return table


if __name__ == "__main__":
    given = dict(arg.split("=", 1) for arg in sys.argv[1:])
    main(
        given["runs"],
        given["data"],
        int(given.get("imgsz", 640)),
        int(given.get("val_imgsz", 160)),
        given.get("name", "deploy"),
        int(given.get("repeats", 50)),
    )
