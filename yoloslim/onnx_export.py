"""ONNX export with the stock Ultralytics exporter, checked against onnxruntime, and ORT CPU latency.

How `export` works, and why:

- The stock exporter (`YOLO(pt).export(format="onnx")`) writes the graph, so a slim model exports exactly like
  any Ultralytics model; nothing here patches Ultralytics.
- It runs on a private copy of the checkpoint in a temporary folder beside the output. The input .pt is only
  ever read; Ultralytics' file-name rules (a file called yolov5n.pt is swapped for a "yolov5nu.pt" download)
  cannot fire on a user's name; and the .onnx reaches its destination in one rename, only after the check
  passed, so a crash or a failed check never leaves a half-written or unverified .onnx behind. A killed
  process can leave the hidden `.<name>-export-*` folder; delete it.
- The check runs the ONNX file in onnxruntime and the same checkpoint in PyTorch (eval, fp32, unfused, Detect in
  export mode, i.e. the decoded (1, 4 + nc, anchors) tensor the graph outputs) on Ultralytics' bus.jpg,
  letterboxed like predict does, and on a seeded random input (for dynamic=True also at a second, non-square
  size). fp32 must agree to 1e-3: scores as they are, box coordinates in units of their anchor's stride (see
  check_onnx for why not raw pixels).
- The output is overwritten when it exists, as Ultralytics does: an .onnx is fully determined by the .pt and
  the settings, so replacing it loses nothing (unlike slim.pt, which prune refuses to replace).
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from ultralytics import YOLO
from ultralytics.data.augment import LetterBox
from ultralytics.nn.modules import Detect
from ultralytics.utils import ASSETS
from ultralytics.utils import LOGGER as ULTRALYTICS_LOGGER

from . import YoloslimError
from .args import verb
from .checkpoint import check_stride, load_model, save_checkpoint
from .log import LOGGER
from .measure import layer_stats

FP32_TOL = 1e-3
DEFAULT_DIR = Path("runs/yoloslim/export")


@verb("export")
def export(
    model,
    imgsz: int = 640,
    dynamic: bool = False,
    simplify: bool = True,
    opset: int | None = None,
    half: bool = False,
    out=None,
    runs: int = 50,
    threads: int = 1,
    tol: float = FP32_TOL,
    verbose: bool = True,
) -> Path:
    """Export `model` (a .pt, a yaml or a module) to ONNX, check it against PyTorch in onnxruntime, time it.

    out: the .onnx to write; default next to the .pt with the same stem (Ultralytics' default), or
    runs/yoloslim/export/<name>.onnx for a yaml or a module. half=True exports fp16 weights (Ultralytics'
    quantize=16; inputs and outputs stay fp32) and is checked to within fp16 resolution: boxes within
    imgsz/512 px, scores within 1e-2. runs: latency runs on `threads` onnxruntime CPU threads (0 skips).
    tol: the fp32 tolerance (see check_onnx); raise it only for a model that PyTorch itself cannot compute to
    1e-3 in fp32, which the error message then says. Returns the path of the checked .onnx.
    """
    return export_with_report(
        model,
        imgsz=imgsz,
        dynamic=dynamic,
        simplify=simplify,
        opset=opset,
        half=half,
        out=out,
        runs=runs,
        threads=threads,
        tol=tol,
        verbose=verbose,
    )[0]


def export_with_report(
    model,
    imgsz: int = 640,
    dynamic: bool = False,
    simplify: bool = True,
    opset: int | None = None,
    half: bool = False,
    out=None,
    runs: int = 0,
    threads: int = 1,
    tol: float = FP32_TOL,
    verbose: bool = False,
) -> tuple[Path, dict]:
    """`export`, also returning what it measured: max_diff per input, tolerance, latency (when runs > 0)."""
    source = model
    torch_model = load_model(source)  # one clear error for a missing, corrupt or non-detection file
    check_stride(torch_model, imgsz)
    is_pt = isinstance(source, (str, Path)) and Path(source).suffix == ".pt"
    dest = destination(source, out)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{dest.stem}-export-", dir=dest.parent))
    except OSError as e:
        raise YoloslimError(
            f"cannot write in {dest.parent} ({e.strerror}); pass out=<a writable folder>/{dest.name}"
        ) from None
    try:
        pt = work / "model.pt"  # a neutral name: Ultralytics rewrites some stock names (yolov5n.pt -> yolov5nu.pt)
        if is_pt:
            shutil.copyfile(source, pt)
        else:
            save_checkpoint(torch_model, pt)
        onnx_file = ultralytics_onnx(pt, imgsz=imgsz, dynamic=dynamic, simplify=simplify, opset=opset, half=half)
        reference = load_model(pt)  # the weights exactly as exported (checkpoints store fp16 weights)
        try:
            report = check_onnx(
                onnx_file, reference, imgsz, dynamic=dynamic, half=half, threads=threads, tol=tol, label=dest.name
            )
        except YoloslimError as e:
            raise YoloslimError(f"{e}; {dest} was not written") from None
        os.replace(onnx_file, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report["onnx"] = str(dest)
    if verbose:
        shape = "dynamic batch/height/width" if dynamic else f"static 1x3x{imgsz}x{imgsz}"
        LOGGER.info(
            f"exported {dest} ({dest.stat().st_size / 2**20:.1f} MB, {shape}, opset {report['opset']}"
            f"{', fp16' if half else ''}{', simplified' if simplify else ''}) with the stock Ultralytics exporter"
        )
        diffs = ", ".join(f"{v:.2e} on {k}" for k, v in report["max_diff"].items())
        LOGGER.info(
            f"onnxruntime vs PyTorch ({'fp16 vs fp32' if half else 'fp32'}): max |diff| {diffs}; worst "
            f"{max(report['checked'].values()):.2e} against the tolerance ({report['tolerance']}): OK"
        )
    if runs:
        report["latency"] = ort_latency(dest, imgsz, runs=runs, threads=threads)
        if verbose:
            lat = report["latency"]
            LOGGER.info(
                f"onnxruntime CPU latency at {imgsz}, {threads} thread{'s' * (threads > 1)}: median "
                f"{lat['median_ms']:.1f} ms, mean {lat['mean_ms']:.1f} ms, p90 {lat['p90_ms']:.1f} ms "
                f"({lat['runs']} runs after {lat['warmup']} warm-up)"
            )
    return dest, report


def destination(source, out) -> Path:
    if out is not None:
        dest = Path(str(out))
        if dest.suffix != ".onnx":
            raise YoloslimError(f"out={out} must be the path of a .onnx file, e.g. out=runs/slim.onnx")
        return dest
    if isinstance(source, (str, Path)) and Path(source).suffix == ".pt":
        return Path(source).with_suffix(".onnx")
    name = Path(str(source)).stem if isinstance(source, (str, Path)) else "model"
    return DEFAULT_DIR / f"{name}.onnx"


def ultralytics_onnx(pt: Path, imgsz: int, dynamic: bool, simplify: bool, opset: int | None, half: bool) -> Path:
    """The stock exporter, on CPU. Its log is held back to warnings: its summary would name the private copy."""

    kwargs = {
        "format": "onnx",
        "imgsz": imgsz,
        "dynamic": dynamic,
        "simplify": simplify,
        "opset": opset,
        "device": "cpu",
        **({"quantize": 16} if half else {}),
    }
    level = ULTRALYTICS_LOGGER.level
    ULTRALYTICS_LOGGER.setLevel(logging.WARNING)
    try:
        return Path(YOLO(str(pt)).export(**kwargs))
    except Exception as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise YoloslimError(f"the Ultralytics ONNX exporter failed: {type(e).__name__}: {message}") from e
    finally:
        ULTRALYTICS_LOGGER.setLevel(level)


def check_onnx(
    onnx_path,
    reference: torch.nn.Module,
    imgsz: int,
    dynamic: bool = False,
    half: bool = False,
    threads: int = 1,
    tol: float = FP32_TOL,
    label: str | None = None,
) -> dict:
    """Compare the graph's output in onnxruntime with PyTorch on bus.jpg and seeded random input; raise if too far.

    The output is (1, 4 + nc, anchors): box coordinates in pixels, then class probabilities. max_diff reports the
    raw max |difference| per input. The tolerance is applied to box errors in units of each anchor's stride (the
    grid cells the head predicts distances in) and to scores as they are: float32 rounding of a pixel coordinate
    grows with the stride (at 640 a correct export of an input-sensitive model differs by ~1e-3 px on stride-32
    boxes, as much as PyTorch fp32 differs from float64), while a wrong export is off by whole pixels.
    When the check fails, the model also runs in float64, and the message says whether PyTorch fp32 itself is that
    far off (a numerically ill-conditioned model, e.g. activations in the hundreds) or the export is.
    """

    label = label or Path(onnx_path).name
    model = copy.deepcopy(reference).float().eval()
    heads = [m for m in model.modules() if isinstance(m, Detect)]
    for m in heads:  # what the exporter sets: the decoded tensor alone, anchors per input size
        m.export, m.format, m.dynamic, m.shape = True, "onnx", dynamic, None
    session = ort_session(onnx_path, threads)
    name = session.get_inputs()[0].name
    gen = torch.Generator().manual_seed(0)
    inputs = {"bus.jpg": bus_image(imgsz), "random": torch.rand(1, 3, imgsz, imgsz, generator=gen)}
    if dynamic:  # the graph must really follow the input size
        stride = int(max(model.stride.tolist()))
        h, w = imgsz + stride, max(stride, imgsz // 2 // stride * stride)
        inputs[f"random {h}x{w}"] = torch.rand(1, 3, h, w, generator=gen)
    box_tol, score_tol = (imgsz / 512, 1e-2) if half else (tol, tol)
    diffs, scaled = {}, {}
    for what, x in inputs.items():
        with torch.no_grad():
            want = model(x)
        want = (want[0] if isinstance(want, (list, tuple)) else want).numpy()
        got = session.run(None, {name: x.numpy()})[0]
        if got.shape != want.shape:
            raise YoloslimError(
                f"{label}: onnxruntime output shape {tuple(got.shape)} differs from PyTorch "
                f"{tuple(want.shape)} on {what}; the ONNX graph does not compute what the model does"
            )
        strides = heads[-1].strides.numpy() if heads and getattr(heads[-1], "strides", None) is not None else None
        diffs[what] = float(np.abs(got.astype(np.float64) - want).max())
        box, score = _errors(got, want, None if half else strides)
        scaled[what] = max(box, score)
        if not (box <= box_tol and score <= score_tol):  # also catches NaN
            unit = "px" if half else "strides"
            message = (
                f"{label}: onnxruntime differs from PyTorch on {what}: boxes by {box:.3g} {unit}, scores by "
                f"{score:.3g} (tolerance {box_tol:g} {unit}, {score_tol:g})"
            )
            if not half:
                with torch.no_grad():
                    exact = copy.deepcopy(model).double()(x.double())
                exact = (exact[0] if isinstance(exact, (list, tuple)) else exact).numpy()
                fp32 = max(_errors(want, exact, strides))
                if fp32 > tol / 2:
                    message += (
                        f"; PyTorch fp32 itself is {fp32:.3g} from float64 here, so the model is numerically "
                        f"ill-conditioned in fp32 (huge activations?): if that is expected, pass tol="
                    )
                    message += f"{max(tol, 4 * scaled[what]):.0e}"
                else:
                    message += (
                        f" while PyTorch fp32 is within {fp32:.1g} of float64: the ONNX graph does not "
                        "compute what the model does"
                    )
            raise YoloslimError(message)
    import onnx  # deferred: only export and its check need onnx

    opset = max(
        (
            o.version
            for o in onnx.load(str(onnx_path), load_external_data=False).opset_import
            if o.domain in ("", "ai.onnx")
        ),
        default=None,
    )
    tolerance = (
        f"boxes {box_tol:g} px, scores {score_tol:g}" if half else f"{tol:g} for boxes in strides and for scores"
    )
    return {"max_diff": diffs, "checked": scaled, "tolerance": tolerance, "opset": opset}


def _errors(got: np.ndarray, want: np.ndarray, strides: np.ndarray | None) -> tuple[float, float]:
    """Max |difference| of the boxes (in units of their anchor's stride when given) and of the scores."""
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    box = err[:, :4] / strides if strides is not None and strides.shape[-1] == err.shape[-1] else err[:, :4]
    return float(box.max()), float(err[:, 4:].max()) if err.shape[1] > 4 else 0.0


def bus_image(imgsz: int) -> torch.Tensor:
    """Ultralytics' bus.jpg as predict feeds a static-shape model: letterboxed to imgsz, RGB, /255, NCHW float32."""

    image = cv2.imread(str(ASSETS / "bus.jpg"))
    if image is None:
        raise YoloslimError(f"{ASSETS / 'bus.jpg'} (shipped with Ultralytics) is missing; reinstall ultralytics")
    image = LetterBox((imgsz, imgsz), auto=False)(image=image)
    chw = np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))  # BGR HWC -> RGB CHW
    return torch.from_numpy(chw).float().div(255).unsqueeze(0)


def ort_session(onnx_path, threads: int = 1):
    """A CPU onnxruntime session with a fixed thread count, sequential execution, all graph optimizations."""
    import onnxruntime as ort  # deferred: only the check and timing need onnxruntime

    path = Path(str(onnx_path))
    if not path.is_file():
        raise YoloslimError(f"{path} does not exist; export a model first (yoloslim export model=...)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise YoloslimError(
            f"{path} is not a loadable ONNX model (corrupt or truncated?): {type(e).__name__}"
        ) from None


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


def measure_many(
    models: dict, imgsz: int = 640, threads: int = 1, runs: int = 50, warmup: int = 10, work_dir=None
) -> list[dict]:
    """Rows for {label: model (.pt, yaml or module)}: each exported to a temporary .onnx and checked, then all
    timed interleaved (see interleaved_latency). Compare latencies within one call, not across calls."""

    rows, paths = [], []
    with tempfile.TemporaryDirectory(prefix="yoloslim-measure-", dir=work_dir) as tmp:
        for i, (label, source) in enumerate(models.items()):
            module = load_model(source)  # once: a yaml builds new random weights on every load
            stats = layer_stats(module, imgsz)
            onnx_path, report = export_with_report(module, imgsz=imgsz, out=Path(tmp) / f"{i}.onnx", threads=threads)
            rows.append(
                {
                    "model": label,
                    "params": sum(p.numel() for p in module.parameters()),
                    "gflops": float(stats.gflops.sum()),
                    "onnx_mb": onnx_path.stat().st_size / 2**20,
                    "max_diff": max(report["max_diff"].values()),  # raw: px for boxes
                    "max_diff_checked": max(report["checked"].values()),
                }
            )  # boxes in strides (check_onnx)
            paths.append(onnx_path)
        for row, latency in zip(rows, interleaved_latency(paths, imgsz, runs=runs, warmup=warmup, threads=threads)):
            row.update(latency)
    return rows
