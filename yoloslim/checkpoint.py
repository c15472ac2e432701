"""Loading and saving Ultralytics detection (and segmentation, pose, OBB) models, one clear error per bad input."""

from __future__ import annotations

import copy
import io
from datetime import datetime
from pathlib import Path

import torch
from torch import nn
from ultralytics import YOLO
from ultralytics import __version__ as ultralytics_version
from ultralytics.nn.modules import Conv
from ultralytics.nn.tasks import DetectionModel, OBBModel, PoseModel, SegmentationModel, yaml_model_load

from . import __version__, classic
from .errors import YoloslimError
from .io import atomic_write


def load_model(model, verbose: bool = False) -> nn.Module:
    """A stock Ultralytics DetectionModel, SegmentationModel, PoseModel or OBBModel (float32, CPU) from a .pt path, a
    model yaml, YOLO or the module."""

    if isinstance(model, YOLO):
        model = model.model
    if isinstance(model, nn.Module):
        if classic.is_classic(model):  # a copy: check() moves it onto the package's classes
            return check_finite(classic.check(copy.deepcopy(model), "the given model"), "the given model")
        return _check_task(model, "the given model")
    path = Path(str(model))
    suffix = path.suffix.lower()  # best.PT is a checkpoint too
    if path.is_dir():
        raise YoloslimError(
            f"model={model} is a folder; give a checkpoint in it (e.g. {path / 'weights' / 'best.pt'}) or a model .yaml"
        )
    if suffix in (".yaml", ".yml"):
        if path.is_file() and classic.is_classic_yaml(path):  # anchors: the yolov5 repository's own yaml
            return classic.from_yaml(path)
        return model_from_yaml(path, verbose)
    if suffix in (".onnx", ".engine", ".torchscript", ".tflite", ".mlpackage", ".xml"):
        raise YoloslimError(
            f"model={model} is an exported model ({path.suffix}); yoloslim trains and prunes "
            "PyTorch checkpoints: give the .pt it was exported from"
        )
    if suffix != ".pt":
        raise YoloslimError(f"model={model} is neither a .pt checkpoint nor a .yaml model config")
    ckpt = load_checkpoint(path)
    candidate = ckpt.get("ema") or ckpt.get("model")
    if is_state_dict(candidate) or (candidate is None and is_state_dict(ckpt)):
        raise YoloslimError(
            f"{path} holds a state_dict (weights without the model's layers); give the whole "
            "checkpoint Ultralytics training writes (weights/best.pt or last.pt), or "
            "torch.save({'model': model}) of the DetectionModel"
        )
    if not isinstance(candidate, nn.Module):
        raise YoloslimError(
            f"{path} is a checkpoint without a model (no 'model' or 'ema' entry); "
            "give the best.pt/last.pt that Ultralytics training wrote"
        )
    if classic.is_classic(candidate):  # before .float(): a classic model's _apply reads its layers
        return check_finite(classic.check(candidate, str(path)), str(path)).float().cpu()
    m = candidate.float().cpu()
    if isinstance(ckpt.get("train_args"), dict):
        m.args = ckpt["train_args"]
    _check_task(m, str(path))
    check_version(m, str(path), ckpt.get("version"))
    return m


def model_from_yaml(path, verbose: bool = False, nc: int | None = None) -> DetectionModel:
    """The model a yaml describes, built as the Ultralytics class its head needs (Segment: SegmentationModel ...)."""
    try:
        cfg = yaml_model_load(str(path))
    except FileNotFoundError:
        raise YoloslimError(
            f"model yaml {path} does not exist; give a file or a stock name like yolov8n.yaml"
        ) from None
    except Exception as e:  # the first line: Ultralytics' YAML errors go on with the parser's context lines
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise YoloslimError(f"could not read the model yaml {path}: {type(e).__name__}: {first}") from None
    try:
        head = str((cfg.get("head") or [[None, None, None]])[-1][2])
    except (TypeError, IndexError, KeyError, AttributeError):
        raise YoloslimError(
            f"{path} is not a model yaml: its head: is not a list of [from, repeats, module, args] layers; "
            "compare with a stock one such as yolov8n.yaml"
        ) from None
    if head in HEAD_MODELS:  # say what it is before building it: these heads do not build as a DetectionModel
        refuse(HEAD_MODELS[head], str(path))
    try:
        return TASK_MODELS.get(head, DetectionModel)(str(path), nc=nc, verbose=verbose)
    except Exception as e:  # Ultralytics raises many kinds for a bad yaml
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise YoloslimError(f"could not build a model from {path}: {type(e).__name__}: {first}") from None


# The heads yoloslim prunes beyond Detect, and the model class each builds as (exact classes: a subclass such as
# YOLOESegModel has another forward).
TASK_MODELS = {"Segment": SegmentationModel, "Pose": PoseModel, "OBB": OBBModel}
MODEL_TASKS = {DetectionModel: "detect", SegmentationModel: "segment", PoseModel: "pose", OBBModel: "obb"}
SUPPORTED = tuple(MODEL_TASKS)

# The head (last layer) of a model yaml -> the Ultralytics model class that yaml builds, for the heads yoloslim
# does not prune.
HEAD_MODELS = {
    "WorldDetect": "WorldModel",
    "YOLOEDetect": "YOLOEModel",
    "YOLOESegment": "YOLOESegModel",
    "YOLOESegment26": "YOLOESegModel",
    "RTDETRDecoder": "RTDETRDetectionModel",
    "Segment26": "SegmentationModel",
    "Pose26": "PoseModel",
    "OBB26": "OBBModel",
    "Classify": "ClassificationModel",
    "SemanticSegment": "SemanticSegmentationModel",
    "Depth": "DepthModel",
}

# model class -> (what it is, why yoloslim does not prune it)
UNSUPPORTED = {
    "WorldModel": (
        "a YOLO-World open-vocabulary detector",
        "its C2fAttn and ImagePoolingAttn blocks mix text embeddings into the image features, and the channel "
        "graph does not trace that guide input",
    ),
    "YOLOEModel": (
        "a YOLOE open-vocabulary detector",
        "its head scores boxes against text or visual prompt embeddings, which the channel graph does not trace",
    ),
    "YOLOESegModel": (
        "a YOLOE open-vocabulary segmentation model",
        "its head scores boxes against prompt embeddings, which the channel graph does not trace",
    ),
    "RTDETRDetectionModel": (
        "an RT-DETR transformer detector",
        "its RTDETRDecoder (deformable attention over a fixed number of queries) is not traced, and it trains with "
        "RTDETRTrainer, not the detection trainers yoloslim extends",
    ),
    "SegmentationModel": ("an instance segmentation model", "YOLO26's Segment26 head is not traced yet"),
    "PoseModel": ("a pose model", "YOLO26's Pose26 head is not traced yet"),
    "OBBModel": ("an oriented-box model", "YOLO26's OBB26 head is not traced yet"),
    "ClassificationModel": ("a classification model", "it has no Detect head to keep"),
    "SemanticSegmentationModel": ("a semantic segmentation model", "its head is not traced"),
    "DepthModel": ("a depth estimation model", "its head is not traced"),
}


def refuse(model_class: str, what: str):
    kind, why = UNSUPPORTED.get(model_class, ("not a detector yoloslim knows", "it is not a DetectionModel"))
    raise YoloslimError(
        f"{what} is {article(model_class)} {model_class} ({kind}); yoloslim prunes YOLO detect, segment, pose and "
        f"obb models, not this one: {why}"
    )


def article(word: str) -> str:
    return "an" if word[:1].upper() in "AEIOU" or word.startswith("RT") else "a"  # an RT-DETR


def task_of(model: nn.Module) -> str:
    """detect, segment, pose or obb: what a loaded model is trained and validated for."""
    return classic.task_of(model) if classic.is_classic(model) else MODEL_TASKS[type(model)]


def is_state_dict(value) -> bool:
    return isinstance(value, dict) and bool(value) and all(torch.is_tensor(v) for v in value.values())


def load_checkpoint(path, retried: bool = False) -> dict:
    """The checkpoint dict at path; a model pickled without the dict around it is wrapped in one."""
    path = Path(path)
    if not path.is_file():
        raise YoloslimError(f"{path} does not exist; check the path (your own weights go in weights/)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except ModuleNotFoundError as e:  # the pickle names classes of a package that is not installed here
        if retried or not classic.is_classic_pickle(e.name or ""):
            raise YoloslimError(foreign_pickle(path, e.name or "")) from None
        classic.enable()  # the yolov5 repository's checkpoint: its package makes models.yolo importable
        return load_checkpoint(path, retried=True)
    except AttributeError as e:  # "Can't get attribute 'X' on <module ...>": a class this Ultralytics lacks
        if "module 'models." in str(e) or "module 'yolov5." in str(e):  # a fork's class (YOLOv7's IDetect ...)
            raise YoloslimError(
                f"{path} is a checkpoint of a fork of the ultralytics/yolov5 repository, with classes the yolov5 "
                f"package {classic.TESTED} lacks ({e}); yoloslim prunes the repository's own models (v5.0 to v7.0)"
            ) from None
        raise YoloslimError(
            f"{path} was saved with classes this Ultralytics {ultralytics_version} lacks ({e}); it was saved by "
            "another Ultralytics version: load it with that one, or retrain from its yaml with this one"
        ) from None
    except Exception as e:
        raise YoloslimError(
            f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?): {type(e).__name__}"
        ) from None
    if isinstance(ckpt, nn.Module):  # torch.save(model) rather than Ultralytics' dict
        ckpt = {"model": ckpt}
    if not isinstance(ckpt, dict):
        raise YoloslimError(f"{path} is not an Ultralytics checkpoint (a dict with 'model'); got {type(ckpt).__name__}")
    return ckpt


def foreign_pickle(path, module: str) -> str:
    """What a checkpoint that pickles another package's classes is, from the first module it names."""
    top = module.split(".")[0]
    if top in ("models", "utils"):  # the ultralytics/yolov5 repository's layout (models/yolo.py, models/common.py)
        return (
            f"{path} is a checkpoint of a fork of the ultralytics/yolov5 repository: it needs the module '{module}', "
            f"which the yolov5 package {classic.TESTED} does not have; yoloslim prunes the repository's own models "
            "(v5.0 to v7.0)"
        )
    return (
        f"{path} pickles classes of the module '{module}', which is not installed here; install the package that "
        "saved it, or give a checkpoint of the ultralytics package"
    )


# Attributes a module of this Ultralytics must have, and what an older one had instead: a checkpoint pickled by
# that version loads (pickle restores its attributes) but its forward fails on the missing one.
RENAMED = {"AAttn": ("qkv", ("qk", "v"), "8.3.x")}


def check_version(model: nn.Module, what: str, saved_by: str | None) -> None:
    """One line for a checkpoint whose modules were saved by an Ultralytics this one cannot run."""
    by = f"Ultralytics {saved_by}" if saved_by else "another Ultralytics version"
    for index, layer in enumerate(model.model):
        for name, m in layer.named_modules():
            rule = RENAMED.get(type(m).__name__)
            if rule and not hasattr(m, rule[0]) and all(hasattr(m, a) for a in rule[1]):
                raise YoloslimError(
                    f"{what}: layer {index} ({type(layer).__name__}{', ' + name if name else ''}) is an "
                    f"{type(m).__name__} of Ultralytics {rule[2]} (separate {' and '.join(rule[1])} convs, not "
                    f"{rule[0]}); the installed Ultralytics {ultralytics_version} cannot run it either: use it with "
                    f"Ultralytics {rule[2]}, or retrain from its yaml with {ultralytics_version}"
                )
    side = 2 * int(max(model.stride.tolist()))
    training = model.training
    try:  # any other attribute the installed forward expects and the pickled module lacks
        with torch.no_grad():
            model.eval()(torch.zeros(1, (getattr(model, "yaml", None) or {}).get("channels", 3), side, side))
    except AttributeError as e:  # another version's module, or one edited after training
        how = "was edited after training" if saved_by == ultralytics_version else f"was saved by {by} or edited"
        raise YoloslimError(
            f"{what} does not run on the installed Ultralytics {ultralytics_version} ({e}): it {how}; load it with "
            "the Ultralytics that saved it, or retrain from its yaml with this one"
        ) from None
    except RuntimeError as e:  # e.g. a conv whose weights do not fit its input: edited or pruned by another tool
        raise YoloslimError(
            f"{what} does not run: its layers do not fit together ({str(e).splitlines()[0][:200]}); give the "
            "checkpoint as Ultralytics training saved it"
        ) from None
    finally:
        model.train(training)


def check_finite(model: nn.Module, what: str) -> nn.Module:
    """One line naming the first layer with NaN or infinite weights or BN statistics (any model of model.model)."""
    for index, layer in enumerate(model.model):
        for name, m in layer.named_modules():
            tensors = [*m.named_parameters(recurse=False), *m.named_buffers(recurse=False)]
            bad = next((k for k, t in tensors if t.is_floating_point() and not torch.isfinite(t).all()), None)
            if bad:  # NaN gammas would rank channels at random and the outputs are NaN: a diverged training
                raise YoloslimError(
                    f"{what}: layer {index} ({type(layer).__name__}{', ' + name if name else ''}) has NaN or "
                    f"infinite values in its {bad}; the training that saved it diverged: give an earlier checkpoint "
                    "(e.g. a best.pt from before the loss became nan)"
                )
    return model


def _check_task(model: nn.Module, what: str) -> nn.Module:
    if type(model).__module__.split(".")[0] in ("models", "utils"):  # run where a yolov5 clone's models/ imports
        raise YoloslimError(foreign_pickle(what, type(model).__module__))
    if type(model) not in SUPPORTED:
        refuse(type(model).__name__, what)
    if not torch.is_tensor(getattr(model, "stride", None)) or not (model.stride > 0).all():
        raise YoloslimError(
            f"{what} has no valid stride (the tensor Ultralytics sets when it builds the model): it was edited "
            "after training; give the checkpoint as Ultralytics saved it"
        )
    head = type(model.model[-1]).__name__
    if head in HEAD_MODELS:  # a supported model class with a head yoloslim does not trace (YOLO26's task heads)
        refuse(HEAD_MODELS[head], what)
    if any(isinstance(m, Conv) and not hasattr(m, "bn") for m in model.modules()):
        raise YoloslimError(
            f"{what} is fused (its BatchNorms were folded into convs); use the unfused checkpoint that training saved"
        )
    check_finite(model, what)
    for index, layer in enumerate(model.model):
        for name, m in layer.named_modules():
            if isinstance(m, Conv) and not isinstance(m.bn, nn.BatchNorm2d):
                raise YoloslimError(
                    f"{what}: layer {index} ({type(layer).__name__}{', ' + name if name else ''}) has "
                    f"{type(m.bn).__name__} where its BatchNorm should be; yoloslim ranks channels "
                    "by BatchNorm gammas: give the model with its BatchNorms"
                )
    return model


def check_stride(model: nn.Module, imgsz: int, key: str = "imgsz") -> None:
    stride = int(max(model.stride.tolist()))
    if imgsz % stride:
        below, above = imgsz // stride * stride, (imgsz // stride + 1) * stride
        raise YoloslimError(
            f"{key}={imgsz} is not a multiple of the model's stride {stride}; "
            f"use {f'{below} or {above}' if below else above}"
        )


def save_checkpoint(model: nn.Module, path, **extra) -> Path:
    """A standard Ultralytics checkpoint: YOLO(path) loads it without yoloslim installed (a classic YOLOv5 model:
    the yolov5 repository's checkpoint, which its own code loads)."""
    if classic.is_classic(model):
        return classic.save(model, path, **extra)

    args = getattr(model, "args", None)
    args = args if isinstance(args, dict) else vars(args) if args is not None else {}
    ckpt = {
        "date": datetime.now().isoformat(),
        "version": ultralytics_version,
        "epoch": -1,
        "best_fitness": None,
        "model": copy.deepcopy(model).half(),
        "ema": None,
        "updates": None,
        "optimizer": None,
        "train_args": {**args, "task": MODEL_TASKS.get(type(model), args.get("task", "detect"))},  # YOLO() reads it
        "yoloslim": {"version": __version__, **extra},  # plain data only: loads without yoloslim
    }
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    return atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))
