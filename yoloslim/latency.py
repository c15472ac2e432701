"""CPU latency at batch 1 (onnxruntime, OpenVINO): one model, or several timed in turn to share the machine alike."""

from __future__ import annotations

import time

import numpy as np

from .errors import YoloslimError
from .onnx_check import ort_session


def ort_latency(onnx_path, imgsz: int, runs: int = 50, warmup: int = 10, threads: int = 1) -> dict:
    """onnxruntime CPU latency of one model at batch 1: median/mean/p90/min ms over `runs` after `warmup`."""
    return interleaved_latency([onnx_path], imgsz, runs=runs, warmup=warmup, threads=threads)[0]


def interleaved_latency(onnx_paths, imgsz: int, runs: int = 50, warmup: int = 10, threads: int = 1) -> list[dict]:
    """Latency of several models timed in turn, one run of each per round (the order rotates every round), so
    load from other processes on a shared machine hits every model alike and the ratios stay fair."""
    if runs < 1:
        raise YoloslimError(f"runs={runs}: latency needs at least one run")
    sessions = [ort_session(p, threads) for p in onnx_paths]
    rng = np.random.default_rng(0)
    feeds = []
    for s in sessions:
        meta = s.get_inputs()[0]
        shape = [
            1 if i == 0 and not isinstance(d, int) else d if isinstance(d, int) else imgsz
            for i, d in enumerate(meta.shape)
        ]
        dtype = np.float16 if meta.type == "tensor(float16)" else np.float32
        feeds.append({meta.name: rng.random(shape, dtype=np.float32).astype(dtype)})
    for s, feed in zip(sessions, feeds):
        for _ in range(warmup):
            s.run(None, feed)
    times = [[] for _ in sessions]
    n = len(sessions)
    for r in range(runs):
        for k in [(r + j) % n for j in range(n)]:
            start = time.perf_counter()
            sessions[k].run(None, feeds[k])
            times[k].append((time.perf_counter() - start) * 1000)
    return [
        {
            "median_ms": float(np.median(t)),
            "mean_ms": float(np.mean(t)),
            "p90_ms": float(np.percentile(t, 90)),
            "min_ms": float(np.min(t)),
            "runs": runs,
            "warmup": warmup,
            "threads": threads,
        }
        for t in times
    ]


def openvino_request(xml, precision: str = "default", threads: int = 1, profile: bool = False):
    """An OpenVINO CPU infer request for an IR: one stream of `threads` threads; precision "f32" (its
    INFERENCE_PRECISION_HINT) or "default" (the plugin's own choice: bf16 where the CPU has it; an INT8 IR's
    quantized layers in int8); profile: per-layer times (get_profiling_info)."""
    import openvino as ov  # deferred: only this runtime's checks, budgets and benchmarks need it

    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "PERF_COUNT": profile}
    if precision != "default":
        config["INFERENCE_PRECISION_HINT"] = precision
    core = ov.Core()
    return core.compile_model(core.read_model(str(xml)), "CPU", config).create_infer_request()


def openvino_latency(xml, imgsz: int, precision: str, runs: int = 50, warmup: int = 10, threads: int = 1) -> dict:
    """OpenVINO CPU latency of an IR at batch 1 (openvino_request's precision and threads)."""
    request = openvino_request(xml, precision, threads)
    x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
    for _ in range(warmup):
        request.infer({0: x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        request.infer({0: x})
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": float(np.median(times)), "runs": runs, "warmup": warmup, "threads": threads}
