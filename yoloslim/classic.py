"""Classic YOLOv5: the ultralytics/yolov5 repository's anchor-based models, through its pip package `yolov5`.

The models most YOLOv5 users have are that repository's checkpoints (`models.yolo.DetectionModel` pickled in
best.pt), not Ultralytics' anchor-free YOLOv5u. They prune with the same graph, plan and surgery (their blocks:
blocks/classic.py), are saved in the repository's own checkpoint layout (its attempt_load, detect, val and
export read them), train with its own train.py (classic_train.py) and are measured with Ultralytics' validator
through AsUltralytics, so a classic model and a YOLOv5u one are scored the same way in one table.

The package is optional (`pip install -r requirements-yolov5.txt`); nothing here imports it until a classic
model is met.
"""

from __future__ import annotations

import copy
import importlib
import io
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import __version__
from .errors import YoloslimError
from .io import atomic_write
from .quiet import quieted

TESTED = "7.0.14"  # the yolov5 package the hooks and blocks were written against (requirements-yolov5.txt)
INSTALL = "pip install -r requirements-yolov5.txt (yolov5==7.0.14 and setuptools<81), or pip install 'yoloslim[yolov5]'"
PACKAGES = ("models", "yolov5")  # the repository pickles models.yolo.*, the pip package yolov5.models.yolo.*
ACTIVATIONS = (nn.Hardswish, nn.LeakyReLU, nn.ReLU, nn.ReLU6, nn.SiLU)
MODEL_TASKS = {"DetectionModel": "detect", "Model": "detect", "SegmentationModel": "segment"}


def enable():
    """Import the yolov5 package and register its blocks; one line naming what to install when it is missing."""
    try:
        with quiet_yolov5():
            yolov5 = importlib.import_module("yolov5")
            yolo = importlib.import_module("yolov5.models.yolo")
    except ModuleNotFoundError as e:
        raise YoloslimError(
            f"classic YOLOv5 models (the ultralytics/yolov5 repository's) need its package, which is not installed "
            f"here ({e.name} is missing): {INSTALL}"
        ) from None
    from .blocks import classic as blocks

    if not hasattr(np, "trapz"):  # its val's mAP integrates with np.trapz, which numpy 2.4 renamed to trapezoid
        np.trapz = np.trapezoid
    blocks.register(importlib.import_module("yolov5.models.common"), yolo)
    root = str(Path(yolov5.__file__).parent)
    if root not in sys.path:  # put there by the package's first import; put back if something took it off
        sys.path.append(root)
    # The package's models/yolo.py put its folder on sys.path, so the repository's own names (models.yolo,
    # models.common) import too: its checkpoints unpickle into those. A clone of the repository that is on
    # sys.path first (yoloslim run inside it) provides them instead.
    try:
        repo_yolo, repo_common = importlib.import_module("models.yolo"), importlib.import_module("models.common")
        blocks.register(repo_common, repo_yolo)
    except (ImportError, AttributeError) as e:
        where = getattr(sys.modules.get("models"), "__path__", ["?"])
        raise YoloslimError(
            f"the 'models' package on sys.path ({list(where)[0]}) is not the yolov5 repository v7.0's ({e}); run "
            "yoloslim outside that folder, so the yolov5 package provides it"
        ) from None
    return yolov5


class quiet_yolov5:
    """Silence the yolov5 package's import-time deprecation warning about pkg_resources (setuptools<81 keeps it)."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

    def __exit__(self, *exc):
        return self._catch.__exit__(*exc)


def is_classic(model) -> bool:
    """Whether a module is a model of the yolov5 repository (either copy of its classes); imports nothing."""
    return isinstance(model, nn.Module) and type(model).__module__.split(".")[0] in PACKAGES


def is_classic_pickle(module_name: str) -> bool:
    """Whether a module name a checkpoint could not import is the yolov5 repository's (models.yolo, utils...)."""
    return module_name.split(".")[0] in ("models", "utils")


def task_of(model: nn.Module) -> str:
    return MODEL_TASKS[type(model).__name__]


def check(model: nn.Module, what: str) -> nn.Module:
    """The checks every model gets (its task, unfused; checkpoint.check_finite the weights), and the updates the
    repository's attempt_load makes to checkpoints of older releases (v5.0/v6.x), so they run on v7.0 code."""
    name = type(model).__name__
    if name not in MODEL_TASKS:
        kind = "a classification model" if "Classif" in name else f"a {name}"
        raise YoloslimError(
            f"{what} is {kind} of the yolov5 repository; yoloslim prunes its detection and segmentation models"
        )
    layers = getattr(model, "model", None)
    if not isinstance(layers, nn.Sequential) or not len(layers) or not hasattr(layers[-1], "anchors"):
        raise YoloslimError(
            f"{what} holds a {type(model).__module__}.{name} that is not the yolov5 repository's model (no layers "
            "ending in its anchor-based Detect); give a checkpoint that the repository's train.py saved"
        )
    enable()
    retarget(model, "yolov5")
    yolo = sys.modules[type(model).__module__]
    if not hasattr(model, "stride"):
        model.stride = torch.tensor([32.0])
    if isinstance(getattr(model, "names", None), (list, tuple)):
        model.names = dict(enumerate(model.names))
    if not hasattr(model, "nc"):  # train.py attaches it; a model built from its yaml has it only in the head
        model.nc = model.model[-1].nc
    for m in model.modules():
        if isinstance(m, (*ACTIVATIONS, yolo.Detect)) and not hasattr(m, "inplace"):
            m.inplace = True  # pickled by torch < 1.7
        if isinstance(m, yolo.Detect):  # the grids are caches the forward rebuilds; v5.0/v6.0 kept one as a buffer
            if not isinstance(m.anchor_grid, list):
                delattr(m, "anchor_grid")
            m.grid, m.anchor_grid = [torch.empty(0)] * m.nl, [torch.empty(0)] * m.nl
        elif isinstance(m, nn.Upsample) and not hasattr(m, "recompute_scale_factor"):
            m.recompute_scale_factor = None  # torch 1.11 and newer read it
    for index, layer in enumerate(model.model):
        for sub, m in layer.named_modules():
            where = f"layer {index} ({type(layer).__name__}{', ' + sub if sub else ''})"
            if hasattr(m, "conv") and isinstance(m.conv, nn.Conv2d) and hasattr(m, "act") and not hasattr(m, "bn"):
                raise YoloslimError(
                    f"{what} is fused (its BatchNorms were folded into convs, {where}); use the unfused checkpoint "
                    "that training saved (weights/best.pt)"
                )
    return model


def from_yaml(path, nc: int | None = None) -> nn.Module:
    """A classic model from one of the repository's yamls (anchors: in the yaml)."""
    enable()
    from yolov5.models.yolo import DetectionModel, SegmentationModel

    head = str(_yaml(path)["head"][-1][2])
    cls = SegmentationModel if head == "Segment" else DetectionModel
    with quieted("yolov5"):
        return check(cls(str(path), nc=nc), str(path))


def _yaml(path) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text())


def is_classic_yaml(path) -> bool:
    """A model yaml of the yolov5 repository: anchors: and its Detect/Segment take them (Ultralytics' do not)."""
    try:
        cfg = _yaml(path)
        return isinstance(cfg, dict) and "anchors" in cfg and str(cfg["head"][-1][2]) in ("Detect", "Segment")
    except Exception:  # not readable here: the Ultralytics loader says why
        return False


def retarget(model: nn.Module, package: str) -> nn.Module:
    """Make every module of the repository's classes an instance of the same class in one copy: "yolov5" (the
    package's yolov5.models.*, which its train, val and export test with isinstance) or "models" (the repository's
    own names, which its checkpoints pickle and a clone of it loads). The two copies are the same code."""
    for m in model.modules():
        module = type(m).__module__
        top = module.split(".")[0]
        if top not in PACKAGES or top == package:
            continue
        target = module.removeprefix("yolov5.") if package == "models" else f"yolov5.{module}"
        m.__class__ = getattr(importlib.import_module(target), type(m).__qualname__)
    return model


def save(model: nn.Module, path, names: str = "models", **extra) -> Path:
    """A checkpoint in the repository's own layout and names (models.yolo.DetectionModel), float16 as its train.py
    saves: a clone of the repository loads it as its own, and so do the yolov5 package and yoloslim. names="yolov5":
    the package's names, for the package's own tools (its export tells the head by isinstance)."""
    ckpt = {
        "epoch": -1,
        "best_fitness": None,
        "model": retarget(copy.deepcopy(model), names).half(),
        "ema": None,
        "updates": None,
        "optimizer": None,
        "opt": None,
        "git": None,
        "date": datetime.now().isoformat(),
        "yoloslim": {"version": __version__, **extra},  # plain data only
    }
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    return atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))


def autoshape(model: nn.Module) -> nn.Module:
    """The model as yolov5.load() gives it: AutoShape (letterbox, NMS, Detections) around a float32 eval copy."""
    enable()
    from yolov5.models.common import AutoShape

    return AutoShape(retarget(copy.deepcopy(model), "yolov5").float().eval())


class AsUltralytics(nn.Module):
    """A classic model's predictions in Ultralytics' layout, (batch, 4 + classes, anchors): boxes as xywh, each
    class's score objectness x class probability, as the repository's own NMS scores them. Ultralytics' validator
    (its NMS, matching and mAP) then scores a classic model exactly as it scores every other model."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.stride = model.stride
        self.names = getattr(model, "names", None) or {i: str(i) for i in range(model.nc)}
        self.yaml = model.yaml
        self.nc = model.nc
        self.task = task_of(model)
        self.args = {}

    def forward(self, x, *args, **kwargs):
        y = self.model(x)[0]  # eval: (batch, anchors, 5 + classes [+ mask coefficients])
        scores = y[..., 5 : 5 + self.nc] * y[..., 4:5]
        return torch.cat((y[..., :4], scores), -1).permute(0, 2, 1)

    def fuse(self, verbose: bool = True):
        return self


class trusted_loads:
    """The yolov5 package's torch.load calls predate torch 2.6's weights_only default, which refuses every
    pickled model (its own yolov5s.pt too); inside, they load as they did when it was written. Only files the user
    gave (or yoloslim wrote) are loaded there, as Ultralytics loads its own checkpoints with weights_only=False."""

    def __enter__(self):
        import os
        import warnings

        self.before = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
        os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.filterwarnings("ignore", message=".*TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD.*")

    def __exit__(self, *exc):
        import os

        if self.before is None:
            os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = self.before
        return self._catch.__exit__(*exc)


def export_onnx(pt: Path, imgsz: int, dynamic: bool, simplify: bool, opset: int | None, half: bool) -> Path:
    """The repository's own exporter (export.py's run, include=onnx) on CPU; simplified by onnxslim, as Ultralytics
    simplifies (its onnx-simplifier step would try to pip-install that package)."""
    if half:
        raise YoloslimError(
            "half=True: the yolov5 repository's exporter writes fp16 ONNX only on a GPU; export in fp32 (half=False)"
        )
    enable()
    import functools

    import yolov5.export

    export = torch.onnx.export
    # torch >= 2.9 exports with dynamo unless told otherwise; the exporter was written for the TorchScript one
    torch.onnx.export = functools.partial(export, dynamo=False)
    try:
        with trusted_loads(), quieted("yolov5"), quiet_yolov5():
            files = yolov5.export.run(
                weights=str(pt),
                imgsz=(imgsz, imgsz),
                include=("onnx",),
                device="cpu",
                dynamic=dynamic,
                simplify=False,
                opset=opset or 17,
            )
    finally:
        torch.onnx.export = export
    onnx_file = Path(files[0]) if files else None
    if onnx_file is None or not onnx_file.is_file():
        raise YoloslimError(f"the yolov5 repository's ONNX exporter failed on {pt.name} (its log above says why)")
    if simplify:
        import onnx
        import onnxslim

        onnx.save(onnxslim.slim(onnx.load(str(onnx_file))), str(onnx_file))
    return onnx_file


def is_classic_head(m: nn.Module) -> bool:
    return is_classic(m) and type(m).__name__ in ("Detect", "Segment")


def anchor_strides(model: nn.Module, height: int, width: int) -> np.ndarray:
    """The stride of each row of a classic head's decoded output at this input size: (1, anchors)."""
    head = model.model[-1]
    rows = [np.full(head.na * (height // int(s)) * (width // int(s)), float(s)) for s in head.stride]
    return np.concatenate(rows)[None]


def validate(model: nn.Module, data, imgsz: int, batch: int, project, callbacks: dict | None = None):
    """Ultralytics' DetectionValidator (as YOLO.val runs it: rect batches, its NMS and metrics) on a classic model,
    through AsUltralytics. callbacks: {event: fn} added to the validator (per_image keeps its matches)."""
    from ultralytics.models.yolo.detect import DetectionValidator

    if task_of(model) != "detect":
        raise YoloslimError(
            "a classic YOLOv5 segmentation model is pruned and exported, not validated by yoloslim: its masks "
            "are scored by the yolov5 repository's segment/val.py"
        )
    args = {
        "task": "detect",
        "mode": "val",
        "data": str(data),
        "imgsz": imgsz,
        "batch": batch,
        "rect": True,
        "plots": False,
        "verbose": False,
        "project": str(project),
        "name": "val",
        "exist_ok": True,
    }
    validator = DetectionValidator(args=args)
    for event, fn in (callbacks or {}).items():
        validator.add_callback(event, fn)
    wrapped = AsUltralytics(retarget(copy.deepcopy(model), "yolov5").float().eval())
    validator(model=wrapped)
    return validator.metrics
