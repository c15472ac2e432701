"""Export to the runtimes users deploy on, each export checked by the stock runtime that will run it.

The stock Ultralytics exporter writes every format (a slim model exports like any Ultralytics model), on a private
copy in a hidden folder beside the output, as onnx_export does; the result is moved into place only once checked:

- **Predictions**: the export, loaded as Ultralytics loads it (AutoBackend: what `YOLO(export)` predicts with),
  against the checkpoint in PyTorch on bus.jpg and seeded noise: boxes in units of their stride and scores within
  the tolerance of the precision the runtime computes in (fp32, or bf16 where OpenVINO picks it on this CPU).
- **Accuracy**, with data=: mAP50-95 of the export (Ultralytics' validator, through the same runtime) beside the
  checkpoint's. INT8 is checked this way only (its outputs differ by design): a drop beyond INT8_TOL is said.

INT8: OpenVINO's by NNCF post-training quantization (Ultralytics' int8=True, calibrated on data='s images), ONNX
Runtime's by its static quantization (QDQ, per-channel weights, calibrated on the same images).
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from ultralytics import YOLO
from ultralytics.nn.modules import Detect

from . import classic
from .checkpoint import check_stride, load_model, save_checkpoint, task_of
from .data import check
from .errors import ExportMismatch, YoloslimError
from .log import LOGGER
from .onnx_check import FP32_TOL, all_errors, bus_image, outputs_of
from .paired import stock_val
from .quiet import quiet_ultralytics

# format -> what Ultralytics' exporter writes for model.pt (int8: OpenVINO's own folder name)
FORMATS = {
    "torchscript": "model.torchscript",
    "onnx": "model.onnx",
    "openvino": "model_openvino_model",
    "ncnn": "model_ncnn_model",
}
# Ultralytics formats that do not run here, and why (the README names them)
ELSEWHERE = {
    "engine": "TensorRT builds and runs engines only on an NVIDIA GPU",
    "coreml": "Core ML models predict only on macOS",
    "imx": "it needs Sony's IMX500 converter and its camera",
    "rknn": "it needs Rockchip's toolkit and its NPU boards",
    "edgetpu": "it needs Google's Edge TPU compiler and its TPU",
    "axelera": "it needs Axelera's SDK and its accelerator",
    "ascend": "it needs Huawei's CANN toolkit and its NPU",
    "deepx": "it needs DEEPX's SDK and its NPU",
    "qnn": "it needs Qualcomm's QNN SDK and its NPU",
    "xilinx": "it needs AMD's Vitis AI toolchain",
    "hailo": "it needs Hailo's dataflow compiler and its accelerator",
    "coreai": "Core AI models run only on macOS",
    "saved_model": "it needs TensorFlow and onnx2tf, not among yoloslim's pinned dependencies yet",
    "pb": "it needs TensorFlow and onnx2tf, not among yoloslim's pinned dependencies yet",
    "litert": "it needs LiteRT (litert-torch with JAX), not among yoloslim's pinned dependencies yet",
    "tflite": "it needs LiteRT (litert-torch with JAX), not among yoloslim's pinned dependencies yet",
    "paddle": "it needs PaddlePaddle and x2paddle, not among yoloslim's pinned dependencies yet",
    "executorch": "it needs ExecuTorch, not among yoloslim's pinned dependencies yet",
    "mnn": "MNN's converter needs protobuf<6 beside onnx's >=6.31.1, and pip-installs its telemetry SDK as it runs",
}
HALF_TOL = 1e-2  # fp16 weights (half=True): boxes in strides and scores
RUNTIMES = {"onnxruntime": ("fp32", "int8"), "openvino": ("fp32", "bf16", "int8")}  # latency budgets' choices
INT8_TOL = 0.02  # mAP50-95 an INT8 export may lose against its checkpoint before the report says so


def check_runtime(runtime: str, precision: str, data) -> None:
    if runtime not in RUNTIMES:
        raise YoloslimError(f"runtime={runtime}: latency is measured on {' or '.join(RUNTIMES)}")
    if precision not in RUNTIMES[runtime]:
        raise YoloslimError(f"precision={precision}: {runtime} runs {', '.join(RUNTIMES[runtime])} here")
    if precision == "int8" and not data:
        raise YoloslimError("precision=int8 calibrates on images of your data: give data=<your data.yaml>")


def latency_on(module: torch.nn.Module, imgsz: int, runtime: str, precision: str, data=None, runs: int = 30) -> float:
    """Median latency (ms, 1 thread) of a module exported for runtime at precision; fp32 and bf16 exports are
    checked as export checks them, an INT8 one is not validated here (a budget search times many levels)."""
    from .latency import openvino_latency, ort_latency

    with tempfile.TemporaryDirectory(prefix="yoloslim-latency-") as tmp:
        pt = save_checkpoint(module, Path(tmp) / "m.pt")
        int8 = precision == "int8"
        format = "onnx" if runtime == "onnxruntime" else "openvino"
        exported = exported_as(pt, format, imgsz, int8, False, data)
        if not int8:
            check_predictions(exported, load_model(pt), imgsz, format, False, label=f"{runtime} export")
        if format == "onnx":
            return ort_latency(exported, imgsz, runs=runs)["median_ms"]
        hint = {"fp32": "f32", "bf16": "default", "int8": "default"}[precision]
        return openvino_latency(next(Path(exported).glob("*.xml")), imgsz, hint, runs=runs)["median_ms"]


def check_format(format: str, int8: bool, half: bool, data) -> None:
    if format in ELSEWHERE:
        raise YoloslimError(f"format={format} does not run on this machine: {ELSEWHERE[format]}")
    if format not in FORMATS:
        raise YoloslimError(f"format={format} is not an export format; yoloslim exports to {', '.join(FORMATS)}")
    if int8 and format not in ("openvino", "onnx"):
        raise YoloslimError(f"int8=True is OpenVINO's (NNCF) or ONNX Runtime's quantization here, not {format}'s")
    if int8 and half:
        raise YoloslimError("int8=True and half=True: give one precision")
    if int8 and data is None:
        raise YoloslimError("int8=True calibrates on images of your data: give data=<your data.yaml>")


def export_deployed(
    model, format: str, imgsz: int, int8: bool, half: bool, data, batch: int, out, verbose: bool, tol: float = FP32_TOL
) -> tuple[Path, dict]:
    """Export `model` to `format` (see FORMATS), check it, move it to out (default: beside the .pt, named as
    Ultralytics names it, with the .pt's stem). Returns its path and the report."""
    check_format(format, int8, half, data)
    reference = load_model(model)
    check_stride(reference, imgsz)
    if data is not None:
        check(data, task=task_of(reference))
    if classic.is_classic(reference):
        raise YoloslimError(
            "a classic YOLOv5 model exports to ONNX with the yolov5 repository's exporter (format=onnx); its "
            "other formats go through that repository's export.py"
        )
    stem = Path(str(model)).stem if isinstance(model, (str, Path)) else "model"
    written = FORMATS[format].replace("model", f"model{'_int8' if int8 else ''}", 1)
    written = "model_int8_openvino_model" if int8 and format == "openvino" else written
    dest = Path(str(out)) if out is not None else default_place(model) / written.replace("model", stem, 1)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{dest.name}-export-", dir=dest.parent))
    except OSError as e:
        raise YoloslimError(f"cannot write in {dest.parent} ({e.strerror}); pass out=<a writable folder>") from None
    try:
        pt = save_checkpoint(reference, work / "model.pt")  # a neutral name (Ultralytics renames some stock ones)
        exported = exported_as(pt, format, imgsz, int8, half, data)
        reference = load_model(pt)  # the weights as exported
        report = {"format": format, "precision": "int8" if int8 else "fp16" if half else "fp32"}
        if not int8:
            report.update(check_predictions(exported, reference, imgsz, format, half, label=dest.name, tol=tol))
        if data is not None:
            report.update(check_accuracy(exported, pt, data, imgsz, batch, int8))
        replace(exported, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["export"] = str(dest)
    if verbose:
        LOGGER.info(f"exported {dest} ({format}, {report['precision']}) with the stock Ultralytics exporter")
        if "max_error" in report:
            LOGGER.info(
                f"{format} ({report['computes_in']}) vs PyTorch: worst {report['max_error']:.2e} against the "
                f"tolerance {report['tolerance']:g} (boxes in strides, scores): OK"
            )
        if "mAP50-95" in report:
            LOGGER.info(
                f"mAP50-95 on {data}: {report['mAP50-95']:.4f} exported, {report['pt mAP50-95']:.4f} the .pt "
                f"({report['mAP50-95'] - report['pt mAP50-95']:+.4f})"
            )
    return dest, report


def exported_as(pt: Path, format: str, imgsz: int, int8: bool, half: bool, data) -> Path:
    """pt exported beside itself: by the stock exporter, INT8 by OpenVINO's NNCF or ONNX Runtime's quantization."""
    quantize = {"int8": True, "data": str(data)} if int8 and format == "openvino" else {}
    exported = stock_export(pt, format, imgsz, half=half, **quantize)
    if int8 and format == "onnx":
        exported = quantize_onnx(exported, pt.with_name(f"{pt.stem}_int8.onnx"), data, imgsz)
    return exported


def default_place(model) -> Path:
    return (
        Path(model).parent
        if isinstance(model, (str, Path)) and Path(model).suffix == ".pt"
        else Path("runs/yoloslim/export")
    )


def stock_export(pt: Path, format: str, imgsz: int, **settings) -> Path:
    """Ultralytics' exporter on CPU, its log held back to warnings (its summary would name the private copy)."""
    kwargs = {"format": format, "imgsz": imgsz, "device": "cpu", **settings}
    try:
        with quiet_ultralytics():
            return Path(YOLO(str(pt)).export(**kwargs))
    except Exception as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise YoloslimError(f"the Ultralytics {format} exporter failed: {type(e).__name__}: {message}") from e


def runner(exported: Path, format: str):
    """The export as Ultralytics runs it (AutoBackend on CPU): a function of an input batch to its outputs. OpenVINO
    runs in fp32 here (its CPU plugin computes in bf16 by default where the CPU has it, which is checked by the
    accuracy, not by this exact comparison of the graph)."""
    if format == "openvino":
        from .latency import openvino_request

        request = openvino_request(next(Path(exported).glob("*.xml")), "f32", threads=2)
        return lambda x: [np.asarray(v) for v in request.infer({0: x.numpy()}).values()]
    from ultralytics.nn.autobackend import AutoBackend

    with quiet_ultralytics():
        backend = AutoBackend(str(exported), device=torch.device("cpu"), verbose=False)

    def run(x):
        y = backend(x)
        return [t.float().numpy() for t in (y if isinstance(y, (list, tuple)) else [y])]

    return run


@torch.no_grad()
def check_predictions(
    exported: Path, reference: torch.nn.Module, imgsz: int, format: str, half: bool, label: str, tol: float = FP32_TOL
):
    """The runtime's raw head output against PyTorch's on bus.jpg and seeded noise (as check_onnx, through the
    runtime users load); raises when it is further than its precision allows, saying (fp32) whether PyTorch fp32
    itself is that far from float64 there (an ill-conditioned model: pass tol=) or the export is off."""
    model = copy.deepcopy(reference).float().eval()
    heads = [m for m in model.modules() if isinstance(m, Detect)]
    for m in heads:  # what the exporter sets: the decoded tensor alone
        m.export, m.format, m.dynamic, m.shape = True, format, False, None
    run = runner(exported, format)
    computes_in, tol = ("fp16", HALF_TOL) if half else ("fp32", tol)
    pose = next((m for m in heads if hasattr(m, "kpt_shape")), None)
    keypoints = (4 + pose.nc, tuple(pose.kpt_shape)) if pose is not None else None
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for what, x in {"bus.jpg": bus_image(imgsz), "random": torch.rand(1, 3, imgsz, imgsz, generator=gen)}.items():
        wants = outputs_of(model, x)
        gots = run(x)
        if len(gots) != len(wants) or any(g.shape != w.shape for g, w in zip(gots, wants)):
            raise ExportMismatch(
                f"{label}: {format} outputs {[g.shape for g in gots]}, PyTorch {[w.shape for w in wants]} on {what}; "
                "the export does not compute what the model does"
            )
        strides = heads[-1].strides.numpy() if heads and getattr(heads[-1], "strides", None) is not None else None
        box, score = all_errors(gots, wants, strides, keypoints)
        if not (box <= tol and score <= tol):
            exact = max(all_errors(wants, outputs_of(copy.deepcopy(model).double(), x.double()), strides, keypoints))
            why = (
                f"PyTorch fp32 itself is {exact:.3g} from float64 here: the model is ill-conditioned in fp32; if that "
                f"is expected, pass tol={max(tol, 4 * max(box, score)):.0e}"
                if exact > tol / 2
                else f"PyTorch fp32 is within {exact:.1g} of float64: the export does not compute what the model does"
            )
            raise ExportMismatch(
                f"{label}: {format} ({computes_in}) differs from PyTorch on {what}: boxes by {box:.3g} strides, scores "
                f"and the other outputs by {score:.3g} (tolerance {tol:g}); {why}; it was not written",
                exact,
            )
        worst = max(worst, box, score)
    return {"computes_in": computes_in, "max_error": worst, "tolerance": tol}


def check_accuracy(exported: Path, pt: Path, data, imgsz: int, batch: int, int8: bool) -> dict:
    """mAP of the export (through its runtime) and of the checkpoint, on data's val split, the same validator."""
    scores, task = {}, task_of(load_model(pt))
    with tempfile.TemporaryDirectory(prefix="yoloslim-val-") as tmp:
        for key, weights in (("", exported), ("pt ", pt)):
            m = stock_val(YOLO(str(weights), task=task), data, imgsz, batch, tmp, device="cpu")
            scores[f"{key}mAP50"], scores[f"{key}mAP50-95"] = float(m.box.map50), float(m.box.map)
    drop = scores["pt mAP50-95"] - scores["mAP50-95"]
    if int8 and drop > INT8_TOL:
        LOGGER.warning(
            f"warning: the INT8 export loses {drop:.3f} mAP50-95 against its .pt ({scores['mAP50-95']:.4f} vs "
            f"{scores['pt mAP50-95']:.4f}), more than {INT8_TOL}: calibrate on more images of your data, or deploy fp32"
        )
    return scores


def quantize_onnx(fp32: Path, dest: Path, data, imgsz: int, images: int = 64) -> Path:
    """ONNX Runtime static INT8 quantization (QDQ, per-channel weights), calibrated on the train images of data."""
    import cv2
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from ultralytics.data.augment import LetterBox
    from ultralytics.data.utils import check_det_dataset

    info = check_det_dataset(str(data))
    files = sorted(p for p in Path(info["train"]).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise YoloslimError(f"int8=True found no train images under {info['train']} to calibrate on")
    step = max(1, len(files) // images)

    class Images(CalibrationDataReader):
        def __init__(self):
            self.files = iter(files[::step][:images])

        def get_next(self):
            path = next(self.files, None)
            if path is None:
                return None
            image = LetterBox((imgsz, imgsz), auto=False)(image=cv2.imread(str(path)))
            chw = np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255
            return {"images": chw}

    quantize_static(
        str(fp32),
        str(dest),
        Images(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    model = onnx.load(str(dest))
    for prop in onnx.load(str(fp32)).metadata_props:  # Ultralytics reads names, stride, task from them
        model.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(model, str(dest))
    return dest


def replace(exported: Path, dest: Path) -> None:
    """Put the checked export at dest, replacing an earlier one (as Ultralytics overwrites its exports)."""
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    elif dest.exists():
        dest.unlink()
    os.replace(exported, dest)
