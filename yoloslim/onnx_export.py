"""ONNX export with the stock Ultralytics exporter, checked against onnxruntime (onnx_check.py), timed (latency.py).

How `export` works, and why:

- The stock exporter (`YOLO(pt).export(format="onnx")`) writes the graph, so a slim model exports exactly like
  any Ultralytics model; nothing here patches Ultralytics.
- It runs on a private copy of the checkpoint in a temporary folder beside the output. The input .pt is only
  ever read; Ultralytics' file-name rules (a file called yolov5n.pt is swapped for a "yolov5nu.pt" download)
  cannot fire on a user's name; and the .onnx reaches its destination in one rename, only after the check
  passed, so a crash or a failed check never leaves a half-written or unverified .onnx behind. A killed
  process can leave the hidden `.<name>-export-*` folder; delete it.
- The check (onnx_check.py) runs the graph in onnxruntime against the same checkpoint in PyTorch.
- The output is overwritten when it exists, as Ultralytics does: an .onnx is fully determined by the .pt and
  the settings, so replacing it loses nothing (unlike slim.pt, which prune refuses to replace).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from . import classic
from .args import verb
from .checkpoint import check_stride, load_model, save_checkpoint
from .errors import ExportMismatch, YoloslimError
from .latency import interleaved_latency, ort_latency
from .log import LOGGER
from .measure import layer_stats
from .onnx_check import FP32_TOL, check_onnx

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
    format: str = "onnx",
    int8: bool = False,
    data: str | None = None,
    batch: int = 16,
) -> Path:
    """Export `model` (a .pt, a yaml or a module) to ONNX, check it against PyTorch in onnxruntime, time it.

    format: onnx (default), or torchscript, openvino, ncnn: the stock exporter's, each checked through the
    runtime Ultralytics loads it with (yoloslim/deploy.py). int8=True: OpenVINO's NNCF or ONNX Runtime's static
    INT8, calibrated on data='s images; data=: the export's mAP50-95 beside the .pt's (batch: its val batch).

    out: the .onnx to write; default next to the .pt with the same stem (Ultralytics' default), or
    runs/yoloslim/export/<name>.onnx for a yaml or a module. half=True exports fp16 weights (Ultralytics'
    quantize=16; inputs and outputs stay fp32) and is checked to within fp16 resolution: boxes within
    imgsz/512 px, scores within 1e-2. runs: latency runs on `threads` onnxruntime CPU threads (0 skips).
    tol: the fp32 tolerance (see check_onnx); raise it only for a model that PyTorch itself cannot compute to
    1e-3 in fp32, which the error message then says. Returns the path of the checked .onnx.
    """
    if format != "onnx" or int8 or data is not None:
        from .deploy import export_deployed  # deferred: its runtimes load only when one is asked for

        return export_deployed(model, format, imgsz, int8, half, data, batch, out, verbose, tol)[0]
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
        if classic.is_classic(torch_model):  # in the package's names, which its exporter recognises
            classic.save(torch_model, pt, names="yolov5")
        elif is_pt:
            shutil.copyfile(source, pt)
        else:
            save_checkpoint(torch_model, pt)
        exporter = classic.export_onnx if classic.is_classic(torch_model) else ultralytics_onnx
        onnx_file = exporter(pt, imgsz=imgsz, dynamic=dynamic, simplify=simplify, opset=opset, half=half)
        reference = load_model(pt)  # the weights exactly as exported (checkpoints store fp16 weights)
        try:
            report = check_onnx(
                onnx_file, reference, imgsz, dynamic=dynamic, half=half, threads=threads, tol=tol, label=dest.name
            )
        except YoloslimError as e:  # any check that fails: the export is not what was asked
            raise ExportMismatch(f"{e}; {dest} was not written", getattr(e, "fp32_error", float("nan"))) from None
        os.replace(onnx_file, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report["onnx"] = str(dest)
    if verbose:
        shape = "dynamic batch/height/width" if dynamic else f"static 1x3x{imgsz}x{imgsz}"
        LOGGER.info(
            f"exported {dest} ({dest.stat().st_size / 2**20:.1f} MB, {shape}, opset {report['opset']}"
            f"{', fp16' if half else ''}{', simplified' if simplify else ''}) with the "
            + ("yolov5 repository's exporter" if classic.is_classic(torch_model) else "stock Ultralytics exporter")
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
    """The stock exporter, on CPU (deploy.stock_export)."""
    from .deploy import stock_export

    return stock_export(
        pt, "onnx", imgsz, dynamic=dynamic, simplify=simplify, opset=opset, **({"quantize": 16} if half else {})
    )


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
