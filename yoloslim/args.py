"""Every verb's arguments, checked in one place by type and range before any work starts.

A verb is a plain function decorated with @verb. Its arguments are checked by name against RULES
(the same name means the same thing in every verb; VERB_RULES holds the few exceptions), so the
Python API and the command line refuse the same values with the same one-line message. Keyword
arguments a verb hands on to Ultralytics' trainer go through Ultralytics' own cfg check, plus the
ranges it does not check. Unknown names get a "did you mean".
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import numbers
import os
from pathlib import Path

import torch
from ultralytics.cfg import CFG_BOOL_KEYS, DEFAULT_CFG_DICT, check_cfg
from ultralytics.engine.model import Model
from ultralytics.utils.torch_utils import select_device

from .errors import YoloslimError
from .plan import Plan
from .quiet import SILENT, quiet_ultralytics
from .sparsity import PENALTIES, SCHEDULES

TASKS = ("detect", "segment", "pose", "obb")  # the tasks yoloslim prunes and trains

TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")
VERBS: dict[str, callable] = {}  # CLI name -> decorated function, filled by @verb


def as_bool(key, value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, str)) and str(value).strip().lower() in TRUE + FALSE:
        return str(value).strip().lower() in TRUE
    raise YoloslimError(f"{key}={value} must be true or false (also accepted: 1/0, yes/no)")


def as_int(key, value, low=None, high=None, what="") -> int:
    if (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, numbers.Integral))
        and float(value).is_integer()
    ):
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise YoloslimError(f"{key}={value} is not a whole number{what}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise YoloslimError(f"{key}={value} must be a whole number {bound}{what}")
    return value


def as_float(key, value, what="") -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise YoloslimError(f"{key}={value} is not a number{what}")
    if not math.isfinite(value):
        raise YoloslimError(f"{key}={value} is not a finite number{what}")
    return float(value)


def as_text(key, value, what="") -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise YoloslimError(f"{key}={value!r} must be a path or a name, not a {type(value).__name__}{what}")
    if not str(value).strip():
        raise YoloslimError(f"{key}= must not be empty{what}")
    return str(value)


def as_list(value) -> list[str]:
    """'a,b' or ['a', 'b'] -> ['a', 'b'] (CLI values arrive as comma-separated strings)."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [str(x).strip() for x in items if str(x).strip()]


# --- rules: (key, value) -> the checked value, or YoloslimError -------------------------------------------


def optional(rule):
    return (
        lambda key, value: None
        if value is None or (isinstance(value, str) and value.lower() == "none")
        else rule(key, value)
    )


def whole(low, high=None, what=""):
    return lambda key, value: as_int(key, value, low, high, what)


def fraction(low_open=True, high_open=True, what=""):
    def rule(key, value):
        v = as_float(key, value, what)
        if (v <= 0 if low_open else v < 0) or (v >= 1 if high_open else v > 1):
            raise YoloslimError(f"{key}={value} is impossible{what}")
        return v

    return rule


def number(low=0.0, what=""):
    def rule(key, value):
        v = as_float(key, value, what)
        if v < low:
            raise YoloslimError(f"{key}={value} must be a number >= {low:g}{what}")
        return v

    return rule


def choice(*options):
    def rule(key, value):
        if value not in options:
            raise YoloslimError(f"{key}={value!r} is not one of {', '.join(options)}")
        return value

    return rule


def text(what=""):
    return lambda key, value: as_text(key, value, what)


def levels(key, value):
    hint = " must be prune ratios between 0 and 1, e.g. levels=0.3,0.5,0.7"
    try:
        values = [float(x) for x in as_list(value)]
    except ValueError:
        values = []
    given = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value
    if not values or any(not (0 < v < 1) for v in values):
        raise YoloslimError(f"{key}={given}{hint}")
    twice = sorted({f"{v:g}" for v in values if values.count(v) > 1})
    if twice:  # a level twice would be pruned, finetuned and reported twice, or once silently
        raise YoloslimError(f"{key}={given} names {', '.join(twice)} twice; give each level once")
    return values


def names(key, value):
    items = as_list(value)
    if not items:
        raise YoloslimError(f"{key}= is empty; give e.g. {key}=yolov8n.yaml,yolov8s.yaml")
    return items


def min_keep(key, value):
    items = as_list(value) if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise YoloslimError(
            f"{key}= is empty; give a fraction such as {key}=0.05 and/or a channel count such as {key}=8"
        )
    out = []
    for item in items:
        v = as_float(key, item, " (a fraction in [0, 1) and/or a whole channel count >= 1)")
        if not (0 <= v < 1 or (v >= 1 and v.is_integer())):
            raise YoloslimError(f"{key}={value} is neither a fraction in [0, 1) nor a whole channel count >= 1")
        out.append(int(v) if v >= 1 else v)
    return out[0] if len(out) == 1 else tuple(out)


def batch(key, value):
    v = as_float(key, value, " (images per batch; -1 picks one for the GPU's memory)")
    if v == -1 or v >= 1 and v.is_integer():
        return int(v)
    if 0 < v < 1:
        return v  # Ultralytics: that fraction of the GPU's memory
    raise YoloslimError(
        f"{key}={value} must be a whole number of images >= 1 (or -1 for Ultralytics' auto "
        "batch, or a fraction in (0, 1) of the GPU's memory)"
    )


def device(key, value):
    """One line for a device this machine does not have (found by Ultralytics' own select_device)."""
    if value is None or str(value).strip().lower() in ("", "cpu"):
        return value

    if str(value).strip().lower().startswith("mps"):
        if not torch.backends.mps.is_available():
            raise YoloslimError(f"{key}={value} asks for Apple's MPS, which this machine does not have; use device=cpu")
        return value

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        with quiet_ultralytics(SILENT):  # its banner is for the training that follows, not for this check
            select_device(str(value), verbose=False)
    except Exception:  # Ultralytics explains in several lines; one is enough here
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        raise YoloslimError(
            f"{key}={value} is not a device here (torch sees {gpus} CUDA GPU{'s' * (gpus != 1)}); "
            f"use device=cpu{' or device=0' if gpus else ''}"
        ) from None
    finally:  # select_device sets CUDA_VISIBLE_DEVICES for the process; the trainer will set it again itself
        if visible is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = visible
    return value


# the names Ultralytics' BaseTrainer.build_optimizer takes (in any case)
OPTIMIZERS = ("auto", "SGD", "MuSGD", "Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSprop")


def optimizer(key, value):
    name = {o.lower(): o for o in OPTIMIZERS}.get(as_text(key, value).strip().lower())
    if name is None:
        lower = {o.lower(): o for o in OPTIMIZERS}
        close = difflib.get_close_matches(str(value).strip().lower(), list(lower), n=1, cutoff=0.5)
        hint = f"did you mean {lower[close[0]]}? " if close else ""
        raise YoloslimError(
            f"optimizer={value} is not an optimizer Ultralytics has; {hint}give one of {', '.join(OPTIMIZERS)}"
        )
    return name


def freeze(key, value):
    """Ultralytics' freeze=: the first N layers, or a list of layer indices (or module names such as 23.cv2); from
    the command line a list comes as 0,1,2, which Ultralytics alone would ignore (it freezes nothing for a str)."""
    if value is None or isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value is not None and value < 0:
            raise YoloslimError(
                f"{key}={value} must be a layer count >= 0 or a list of layer indices, e.g. {key}=0,1,2"
            )
        return value
    items = as_list(value)
    if isinstance(value, bool) or not items:
        raise YoloslimError(
            f"{key}={value} must be a layer count or a list of layer indices, e.g. {key}=10 or {key}=0,1,2"
        )
    return [int(x) if x.isdigit() else x for x in items]


def model_source(key, value):
    """A path, a YOLO object or a module; what the path holds is checked where it is loaded."""

    if isinstance(value, (torch.nn.Module, Model)):
        return value
    return as_text(key, value, "; give a .pt checkpoint or a model .yaml")


def plan_source(key, value):
    return value if value is None or isinstance(value, Plan) else as_text(key, value, "; give a plan.json")


def positive(key, value):
    v = as_float(key, value)
    if v <= 0:
        raise YoloslimError(f"{key}={value} must be a positive number, e.g. {key}=1e-3")
    return v


def name_rule(key, value):
    v = as_text(key, value, "; give a folder name, e.g. name=exp")
    if v.strip() in (".", "..") or Path(v).is_absolute() or ".." in Path(v.replace("\\", "/")).parts:
        raise YoloslimError(f"{key}={v} must be a folder name inside project=, e.g. name=exp")
    return v


def val_split(key, value):
    """A share of the images in (0, 1), or the names of the validation images."""
    try:
        return fraction(what=": give a share of the images in (0, 1) or the names of the val images")(key, value)
    except YoloslimError:
        if isinstance(value, (str, list, tuple)) and as_list(value) and not _is_number(value):
            return as_list(value)
        raise


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


EPOCHS = whole(1)
RULES = {
    # models, data, outputs
    "model": model_source,
    "data": optional(text("; give a data.yaml")),
    "project": text("; give an output folder, e.g. project=runs/yoloslim"),
    "name": name_rule,
    "out": optional(text("; give an output path")),
    "plan": plan_source,
    "models": names,
    "runs": optional(names),
    # sizes and counts
    "size": whole(32, 8192, " (the side of a tile in pixels, e.g. size=640)"),
    "overlap": fraction(low_open=False, what=": it is the share of a tile shared with its neighbour, 0 <= overlap < 1"),
    "min_visible": fraction(high_open=False, what=": it is the share of a box a tile must hold to keep it, (0, 1]"),
    "imgsz": whole(32, 8192, " (the square input size in pixels, e.g. imgsz=640)"),
    "epochs": EPOCHS,
    "sparse_epochs": EPOCHS,
    "finetune_epochs": EPOCHS,
    "pretrain_epochs": whole(0),
    "batch": batch,
    "nbs": whole(1),
    "workers": whole(0),
    "seed": whole(0),
    "round_to": whole(1, what=" (kept channel counts are rounded to multiples of it)"),
    "threads": whole(1),
    "opset": optional(whole(1, what=" (an ONNX opset such as 17, or none for Ultralytics' pick)")),
    # pruning
    "ratio": optional(fraction(what=": it is the fraction of channels to remove, 0 < ratio < 1")),
    "threshold": optional(number(0.0, " (an |gamma| below which channels are removed)")),
    "min_keep": min_keep,
    "levels": levels,
    "max_group_ratio": fraction(high_open=False, what=": it is the most of one group a prune may remove, (0, 1]"),
    "gflops": optional(positive),
    "params": optional(positive),
    "latency_ms": optional(positive),
    "speedup": optional(number(1.0, " (times faster than the unpruned model in onnxruntime)")),
    "max_drop": optional(fraction(low_open=False, what=": it is the mAP50-95 a prune may lose, 0 <= max_drop < 1")),
    "val_imgsz": whole(32, 8192, " (the size budgets validate at)"),
    # sparse training
    "sr": lambda key, value: None
    if str(value).strip().lower() in ("auto", "none")
    else number(0.0, " (the weight of the gamma penalty, e.g. 1.0, or auto)")(key, value),
    "sr_step": optional(fraction(high_open=False, what=": it is a fraction of the epochs in (0, 1]")),
    "sr_share": optional(fraction(what=": it is the share of the prunable channels to push to zero, 0 < sr_share < 1")),
    "sr_schedule": optional(choice(*SCHEDULES)),
    "penalty": optional(choice(*PENALTIES)),
    "task": optional(choice(*TASKS)),
    # training (Ultralytics' arguments it checks too loosely)
    "optimizer": optimizer,
    "freeze": freeze,
    # export
    "tol": positive,
    "format": text("; give an export format such as onnx, openvino, ncnn or torchscript"),
    "runtime": text("; give onnxruntime or openvino"),
    "precision": text("; give fp32, bf16 or int8"),
    "device": device,
}
for flag in (
    "exist_ok",
    "overwrite",
    "save",
    "compensate",
    "verbose",
    "dynamic",
    "simplify",
    "half",
    "int8",
    "export",
    "plots",
    "amp",
    "dry_run",
):
    RULES.setdefault(flag, as_bool)
VERB_RULES = {  # the few names that mean something else in one verb
    "export": {"runs": whole(0, what=" (latency runs; 0 skips timing)")},
    "sweep": {
        "runs": whole(0, what=" (latency runs per level; 0 skips timing)"),
        "max_drop": fraction(low_open=False, what=": it is the mAP50-95 a level may lose, 0 <= max_drop < 1"),
    },
    "data convert": {
        "source": optional(text("; give a folder of Pascal VOC .xml files or a COCO .json")),
        "images": optional(text("; give the folder of the images")),
        "out": text("; give the dataset folder, e.g. out=datasets/converted"),
        "val": val_split,
    },
    "data tile": {
        "out": optional(text("; give the dataset folder for the tiles")),
        "scale": positive,
    },
    "data synth": {
        "train": whole(1, what=" (training images to generate)"),
        "val": whole(1, what=" (validation images to generate)"),
        "imgsz": whole(32, 4096, " (the side of the generated images in pixels)"),
        "out": text("; give the dataset folder, e.g. out=datasets/tea-synth"),
    },
}


def check_train_args(extra: dict, verb_name: str) -> dict:
    """Keyword arguments handed on to Ultralytics' trainer: its own key and type check, then our ranges."""

    out = {}
    for key, value in extra.items():
        if key not in DEFAULT_CFG_DICT:
            unknown(key, list(DEFAULT_CFG_DICT), verb_name)
        if key in CFG_BOOL_KEYS:
            value = as_bool(key, value)
        elif key in RULES:
            value = RULES[key](key, value)
        out[key] = value
    try:
        check_cfg(dict(out), hard=True)
    except (TypeError, ValueError) as e:
        raise YoloslimError(str(e).strip().splitlines()[0]) from None
    return out


def unknown(key, candidates, verb_name) -> None:
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise YoloslimError(f"'{key}' is not an argument of '{verb_name}'; {hint}run 'yoloslim help {verb_name}'")


def verb(cli_name: str, trains: bool = False, passes_to=None):
    """Register a verb and check its arguments by RULES before its body runs.

    trains: its extra keyword arguments go to Ultralytics' trainer and are checked as training arguments.
    passes_to: its extra keyword arguments go to that (decorated) verb and must be that verb's arguments."""

    def decorate(fn):
        signature = inspect.signature(fn)
        params = signature.parameters
        takes_extra = any(p.kind is p.VAR_KEYWORD for p in params.values())
        rules = {**RULES, **VERB_RULES.get(cli_name, {})}

        def check(args, kwargs, shown_as=cli_name):
            named = {k: v for k, v in kwargs.items() if k in params and params[k].kind is not params[k].VAR_KEYWORD}
            extra = {k: v for k, v in kwargs.items() if k not in named}
            if extra and not takes_extra:
                unknown(next(iter(extra)), [k for k in params if k != "verbose"], shown_as)
            try:
                bound = signature.bind_partial(*args, **named)
            except TypeError as e:  # positional misuse from Python
                raise YoloslimError(f"{shown_as}: {e}") from None
            missing = [
                k
                for k, p in params.items()
                if p.default is p.empty
                and k not in bound.arguments
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            ]
            if missing:
                raise YoloslimError(
                    f"{shown_as} needs {' and '.join(m + '=' for m in missing)}; run 'yoloslim help {shown_as}'"
                )
            for key, value in list(bound.arguments.items()):
                if key in rules:
                    bound.arguments[key] = rules[key](key, value)
            if trains:
                extra = check_train_args(extra, cli_name)
            elif passes_to is not None:
                extra = passes_to.check_only(extra, cli_name)
            return bound, extra

        @functools.wraps(fn)
        def checked(*args, **kwargs):
            bound, extra = check(args, kwargs)
            return fn(*bound.args, **bound.kwargs, **extra)

        def check_only(kwargs: dict, shown_as: str = cli_name) -> dict:
            """The checked keyword arguments, without running the verb (shown_as: the verb that passes them)."""
            bound, extra = check((), kwargs, shown_as)
            return {**bound.arguments, **extra}

        checked.cli_name = cli_name
        checked.trains = trains
        checked.check_only = check_only
        VERBS[cli_name] = checked
        return checked

    return decorate


# --- help: what each argument means to a user (`yoloslim help <verb>`), by name as RULES are -------------------

REQUIRED = {  # arguments with a default of None in the signature that the verb still cannot do without
    "sweep": ("data",),
    "data check": ("data",),
    "data tile": ("data",),
    "data convert": ("source",),
}
ARG_HELP = {
    "model": "the model: a .pt checkpoint (yours, or one yoloslim wrote) or a model .yaml such as yolov8n.yaml; "
    "it is read, never changed",
    "data": "the dataset: a YOLO data.yaml (make one with 'yoloslim data convert' or 'yoloslim data synth')",
    "project": "the folder the output folder goes in",
    "name": "the output folder's name inside project=",
    "exist_ok": "replace what an existing output folder holds (false: refuse; training verbs: a new -2 name)",
    "overwrite": "replace an existing, non-empty out= folder",
    "imgsz": "the square input size in pixels, a multiple of the model's stride (32, or 64 for P6 models)",
    "batch": "images per batch",
    "nbs": "images per optimizer step (Ultralytics' nominal batch; gradients are accumulated up to it)",
    "workers": "data loader processes",
    "device": "cpu, a GPU index such as 0, or 0,1 for several; unset: the GPU if there is one",
    "seed": "the random seed, for a run you can repeat",
    "levels": "prune ratios to try, comma-separated, each between 0 and 1 (e.g. 0.3,0.5,0.7)",
    "ratio": "the share of the prunable channels to remove, between 0 and 1 (e.g. 0.5)",
    "threshold": "remove the channels whose |gamma| (BatchNorm scale) is below this",
    "plan": "a plan.json from an earlier prune, to remove exactly the same channels again",
    "min_keep": "the fewest channels a group keeps: a share such as 0.05 and/or a count such as 8 (0.05,8)",
    "max_group_ratio": "the largest share of one group's channels a prune may remove, in (0, 1]",
    "round_to": "kept channel counts are rounded to multiples of this (8 runs faster on most hardware; 1: exact)",
    "compensate": "fold the constant output of each removed channel (its BatchNorm shift) into the next layer, "
    "so the pruned model computes what the unpruned one did without those channels; false: just cut them",
    "save": "write slim.pt, plan.json, layers.csv and channels.png (false: prune in memory only, for Python use)",
    "dry_run": "show the plan and the layer table, write nothing",
    "gflops": "a budget: prune until the model needs at most this many GFLOPs at imgsz=",
    "params": "a budget: prune until the model has at most this many parameters",
    "latency_ms": "a budget: prune until onnxruntime runs the model in at most this many ms on the CPU at imgsz=",
    "speedup": "a budget: prune until the model runs this many times faster than unpruned (onnxruntime CPU)",
    "max_drop": "a budget: prune as far as the mAP50-95 on data= drops by at most this (e.g. 0.01)",
    "val_imgsz": "the image size the max_drop= budget validates at",
    "runs": "latency runs to time (the median is reported); 0 skips timing",
    "threads": "onnxruntime CPU threads for the latency",
    "dynamic": "export with a dynamic batch and image size",
    "simplify": "simplify the ONNX graph (onnxslim)",
    "opset": "the ONNX opset; unset: Ultralytics' choice",
    "half": "fp16 weights (inputs and outputs stay fp32), checked to fp16 precision",
    "format": "onnx, torchscript, openvino or ncnn (docs/deploy.md names the formats that do not run here, and why)",
    "int8": "INT8 (openvino: NNCF; onnx: ONNX Runtime static), calibrated on data=, checked by its mAP",
    "runtime": "where latency_ms=/speedup= time the model: onnxruntime or openvino (CPU, 1 thread)",
    "precision": "what latency_ms=/speedup= time: fp32, bf16 (openvino) or int8 (calibrated on data=)",
    "out": "the file or folder to write",
    "tol": "the largest difference from PyTorch the ONNX check accepts (fp32)",
    "sr": "the penalty's strength; auto: set every step so the pushed channels reach zero by sr_step",
    "sr_schedule": "how the penalty changes over the epochs: step (full, then 1/100), linear or constant",
    "sr_step": "the share of the epochs the full penalty lasts (step schedule)",
    "penalty": "which gammas are pushed: wide (the weakest channels, wide layers first), lowest, or l1 (all)",
    "sr_share": "the share of the prunable channels the penalty pushes to zero",
    "pretrain_epochs": "epochs of plain training of model= first (0 when model= is already trained, a .pt)",
    "sparse_epochs": "epochs of sparse training",
    "finetune_epochs": "epochs of finetuning each pruned model",
    "export": "export each model to ONNX and time it",
    "models": "the models to compare, comma-separated (.yaml or .pt)",
    "task": "the labels' task: detect (boxes), segment (polygons), pose (keypoints) or obb (rotated boxes)",
    "train": "training images to generate",
    "val": "validation images to generate",
    "source": "the annotations: a folder of Pascal VOC .xml files or a COCO .json file",
    "images": "the folder the annotations' image file names are relative to; unset: the source's folder",
    "size": "the side of a tile in pixels",
    "overlap": "the share of a tile shared with its neighbour (training tiles only)",
    "min_visible": "keep a cut box when at least this share of it lies inside the tile",
    "scale": "resize each image by this factor before tiling (e.g. 0.5)",
}
VERB_ARG_HELP = {  # the names that mean something else in one verb (as VERB_RULES)
    "prune": {
        "imgsz": "the image size GFLOPs and latency are counted at",
        "data": "the dataset max_drop= validates on (and precision=int8 calibrates on)",
    },
    "export": {
        "data": "a data.yaml: the export's mAP beside the .pt's, and the images int8=True calibrates on",
        "batch": "the validation batch with data=",
        "imgsz": "the exported model's input size, a multiple of the model's stride",
        "out": "the .onnx (or format's file or folder) to write; unset: next to the .pt with its name",
        "model": "the model to export: a .pt checkpoint or a model .yaml",
    },
    "sweep": {
        "imgsz": "the image size each level is validated and timed at",
        "data": "the dataset whose val split measures each level",
        "runs": "latency runs per level (median reported); 0 skips timing",
        "max_drop": "the knee is the last level whose mAP50-95 (and every lower level's) drops by at most this",
    },
    "compare": {
        "runs": "finished pipeline folders to tabulate (comma-separated) instead of training: no training happens",
        "levels": "the prune levels each model's pipeline tries, comma-separated",
    },
    "pipeline": {
        "model": "the start: a model .yaml (trained first, pretrain_epochs=) or your trained .pt (pretrain_epochs=0)",
        "data": "the dataset (a data.yaml); unset: the synthetic data in datasets/tea-synth (made if missing)",
        "levels": "the prune levels to make, finetune and report, comma-separated",
        "imgsz": "the training and validation image size",
        "sr": "sparse training's strength (auto: calibrated); see 'yoloslim help sparse'",
        "sr_step": "sparse training's sr_step (unset: its default)",
        "penalty": "sparse training's penalty (unset: its default)",
        "sr_share": "the share of the prunable channels sparse training pushes to zero (0.6 aims at a >= 50% cut)",
    },
    "data synth": {"out": "the dataset folder to create", "imgsz": "the side of the generated images in pixels"},
    "data check": {"task": "also check that the labels are this task's; unset: boxes (or polygons read as boxes)"},
    "data convert": {
        "out": "the dataset folder to create",
        "val": "the share of the images held out for validation, or the names of the validation images (a,b)",
        "seed": "the seed of the train/val split",
        "names": "the classes in the order of their ids (cat,dog); unset: COCO's category order, VOC's alphabetical",
    },
    "data tile": {"out": "the dataset folder for the tiles; unset: beside the dataset, named <dataset>-tiles<size>"},
    "train": {"model": "the model: a .yaml to train from scratch, or a .pt to train further at its own width"},
    "finetune": {"model": "the pruned model: a slim.pt from 'yoloslim prune' (or any .pt), trained at its width"},
}
TRAIN_ARG_HELP = {  # the Ultralytics training arguments a user reaches for first (training verbs take them all)
    "epochs": "epochs to train (Ultralytics' default: 100)",
    "imgsz": "the training image size, a multiple of the model's stride (default: 640)",
    "batch": "images per batch (default: 16; -1: as many as the GPU holds)",
    "device": "cpu, a GPU index such as 0, or 0,1 for several (default: the GPU if there is one)",
    "optimizer": "auto, SGD, AdamW, Adam, ... (default: auto)",
    "lr0": "the initial learning rate (used with an optimizer= other than auto)",
    "freeze": "train with the first N layers frozen, or the listed layer indices (e.g. freeze=0,1,2)",
    "resume": "continue an interrupted run: resume=True with model=<run>/weights/last.pt",
    "project": "the folder the run folder goes in (default: runs/yoloslim)",
    "name": "the run folder's name (default: the verb's name; taken names get -2, -3 ...)",
    "exist_ok": "train into an existing run folder, replacing its results",
}


def argument_help(verb_name: str, key: str) -> str:
    return VERB_ARG_HELP.get(verb_name, {}).get(key) or ARG_HELP.get(key, "")
