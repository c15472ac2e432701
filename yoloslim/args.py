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
from ultralytics.utils import LOGGER as ULTRALYTICS_LOGGER
from ultralytics.utils.torch_utils import select_device

from . import YoloslimError
from .plan import Plan

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
    if not values or any(not (0 < v < 1) for v in values):
        given = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        raise YoloslimError(f"{key}={given}{hint}")
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

    visible, quiet = os.environ.get("CUDA_VISIBLE_DEVICES"), ULTRALYTICS_LOGGER.disabled
    try:
        ULTRALYTICS_LOGGER.disabled = True  # its banner is for the training that follows, not for this check
        select_device(str(value), verbose=False)
    except Exception:  # Ultralytics explains in several lines; one is enough here
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        raise YoloslimError(
            f"{key}={value} is not a device here (torch sees {gpus} CUDA GPU{'s' * (gpus != 1)}); "
            f"use device=cpu{' or device=0' if gpus else ''}"
        ) from None
    finally:  # select_device sets CUDA_VISIBLE_DEVICES for the process; the trainer will set it again itself
        ULTRALYTICS_LOGGER.disabled = quiet
        if visible is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = visible
    return value


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
    if v.strip() in (".", "..") or Path(v).is_absolute():
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
    "sr_schedule": optional(choice("constant", "linear", "step")),
    "penalty": optional(choice("wide", "lowest", "l1")),
    "task": optional(choice("detect", "segment", "pose", "obb")),
    # export
    "tol": positive,
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
