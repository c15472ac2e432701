"""Is an exported ONNX graph the model? onnxruntime against PyTorch, on Ultralytics' bus.jpg and seeded noise.

The check runs the ONNX file in onnxruntime and the same checkpoint in PyTorch (eval, fp32, unfused, Detect in
export mode, i.e. the decoded (1, 4 + nc + extra, anchors) tensor the graph outputs, with a segmentation model's
mask prototypes beside it) on bus.jpg, letterboxed like predict does, and on a seeded random input (for
dynamic=True also at a second, non-square size). fp32 must agree to 1e-3 on every output: box coordinates in
units of their anchor's stride (check_onnx says why not raw pixels), everything else (scores, mask coefficients
and prototypes, keypoints, angles) as it is.
"""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import torch
from ultralytics.data.augment import LetterBox
from ultralytics.nn.modules import Detect
from ultralytics.utils import ASSETS

from . import classic
from .errors import ExportMismatch, YoloslimError

FP32_TOL = 1e-3


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
    anchor_based = [m for m in model.modules() if classic.is_classic_head(m)]
    for m in anchor_based:  # the yolov5 repository's exporter: the decoded (1, anchors, 5 + nc) tensor alone
        m.export, m.dynamic = True, dynamic
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
    pose = next((m for m in heads if hasattr(m, "kpt_shape")), None)
    keypoints = (4 + pose.nc, tuple(pose.kpt_shape)) if pose is not None else None  # rows of the first output
    for what, x in inputs.items():
        wants = outputs_of(model, x)
        strides = heads[-1].strides.numpy() if heads and getattr(heads[-1], "strides", None) is not None else None
        gots = session.run(None, {name: x.numpy()})
        if anchor_based:  # rows as Ultralytics lays them out, (1, 5 + nc, anchors), each anchor with its stride
            gots[0], wants[0] = gots[0].transpose(0, 2, 1), wants[0].transpose(0, 2, 1)
            strides = classic.anchor_strides(model, *x.shape[2:])
        if len(gots) != len(wants) or any(g.shape != w.shape for g, w in zip(gots, wants)):
            raise ExportMismatch(
                f"{label}: onnxruntime outputs {[tuple(g.shape) for g in gots]} differ from PyTorch's "
                f"{[tuple(w.shape) for w in wants]} on {what}; the ONNX graph does not compute what the model does"
            )
        diffs[what] = max(float(np.abs(g.astype(np.float64) - w).max()) for g, w in zip(gots, wants))
        box, score = all_errors(gots, wants, None if half else strides, keypoints)
        scaled[what] = max(box, score)
        if not (box <= box_tol and score <= score_tol):  # also catches NaN
            unit = "px" if half else "strides"
            message = (
                f"{label}: onnxruntime differs from PyTorch on {what}: boxes by {box:.3g} {unit}, scores and the "
                f"other outputs by {score:.3g} (tolerance {box_tol:g} {unit}, {score_tol:g})"
            )
            fp32 = float("nan")
            if not half:
                exact = outputs_of(copy.deepcopy(model).double(), x.double())
                if anchor_based:
                    exact[0] = exact[0].transpose(0, 2, 1)
                fp32 = max(all_errors(wants, exact, strides, keypoints))
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
            raise ExportMismatch(message, fp32)
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


@torch.no_grad()
def outputs_of(model: torch.nn.Module, x: torch.Tensor) -> list[np.ndarray]:
    """What the exported graph outputs, from PyTorch: the decoded (1, 4 + nc + extra, anchors) tensor, and for a
    segmentation model its mask prototypes too."""
    out = model(x)
    return [t.numpy() for t in (out if isinstance(out, (list, tuple)) else [out])]


def all_errors(gots, wants, strides, keypoints=None) -> tuple[float, float]:
    """(boxes, everything else) over every output: the first output's box rows (and keypoints) in strides
    (_errors), the rest of it (scores, mask coefficients, angles) and the other outputs (mask prototypes) as they
    are."""
    box, score = _errors(gots[0], wants[0], strides, keypoints)
    rest = [float(np.abs(g.astype(np.float64) - w.astype(np.float64)).max()) for g, w in zip(gots[1:], wants[1:])]
    return box, max([score, *rest])


def _errors(got: np.ndarray, want: np.ndarray, strides: np.ndarray | None, keypoints=None) -> tuple[float, float]:
    """Max |difference| of the boxes (in units of their anchor's stride when given) and of the rest (scores, ...),
    where keypoints=(first row, kpt_shape) says which rows are keypoint coordinates in pixels, in strides too."""
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    if strides is not None and strides.shape[-1] == err.shape[-1]:
        err[:, :4] /= strides
        if keypoints:
            first, (count, ndim) = keypoints
            for k in range(count):
                err[:, first + k * ndim : first + k * ndim + 2] /= strides
    return float(err[:, :4].max()), float(err[:, 4:].max()) if err.shape[1] > 4 else 0.0


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
