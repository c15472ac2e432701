"""The command line: `yoloslim <verb> key=value ...`. Thin: parsing and dispatch to the Python API.

The verbs and their arguments come from the functions themselves (registered by yoloslim.args.verb), so the
CLI and the Python API cannot disagree; what help says about each argument is in yoloslim/args.py (ARG_HELP),
by name as the argument rules are. torch and Ultralytics are imported inside main(), so that --version and a
Ctrl-C in the first seconds get one line.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import signal
import sys
import textwrap
import traceback

from . import __version__
from .errors import YoloslimError
from .log import LOGGER

# import order = help order
VERB_MODULES = ("data", "convert", "trainer", "pruning", "sweep", "onnx_export", "flow", "study")
GROUPS = {"data": "make, check, convert and tile datasets"}  # verbs of two words: the first word's meaning
# What each verb does, for a user (the functions' docstrings are written for Python callers): the line of the verb
# list, then what `help <verb>` adds.
ABOUT = {
    "data synth": (
        "generate a small synthetic YOLO dataset, to try yoloslim without your own data",
        "The images are tea sprouts on soil; task= chooses the labels.",
    ),
    "data check": (
        "check a dataset before training: data.yaml, images, labels",
        "Every image must read and every label parse; counts the objects per class and split.",
    ),
    "data convert": (
        "turn Pascal VOC .xml or COCO .json annotations into a YOLO dataset",
        "Writes images/, labels/ and data.yaml in out=; the images are copied, the annotations left as they are.",
    ),
    "data tile": (
        "cut large images into overlapping tiles, boxes clipped to each tile",
        "Small objects keep their pixels at the training size; train on the tiles at imgsz=size.",
    ),
    "train": (
        "train a model: the unpruned baseline, or a .pt further at its own width",
        "A .pt keeps its own (possibly pruned) width. The weights land in <project>/<name>/weights/best.pt.",
    ),
    "sparse": (
        "sparse training: push the gammas of unimportant channels to zero",
        "Training with a penalty on the BatchNorm scales (gammas), so that prune can remove the channels that "
        "reached zero at little cost. Writes sparse.pt and gammas.png beside the run.",
    ),
    "finetune": (
        "train a pruned model (slim.pt) to win back accuracy, at its slim width",
        "On data with other classes, or the same classes in another order, the class outputs follow the classes "
        "by name (one line says what was mapped).",
    ),
    "prune": (
        "remove the channels with the smallest gammas: slim.pt, plan.json, layers.csv",
        "Say how far with one of ratio=, threshold=, plan= or a budget (gflops=, params=, latency_ms=, speedup=, "
        "max_drop=). Writes slim.pt, plan.json, layers.csv and channels.png in <project>/<name>; then finetune "
        "the slim.pt.",
    ),
    "inspect": (
        "show the channel groups: size, gammas, and what cannot be pruned and why",
        "Nothing is written.",
    ),
    "sweep": (
        "prune at each level without finetuning: mAP, size, GFLOPs, latency, the knee",
        "The knee is the last level before accuracy falls. Writes sweep.csv and sweep.png in <project>/<name>.",
    ),
    "export": (
        "export to ONNX, checked against PyTorch in onnxruntime, and timed",
        "The latency is measured with onnxruntime on the CPU.",
    ),
    "pipeline": (
        "all of it in one resumable run: train, sparse, prune, finetune, export, report",
        "Run it again with the same arguments to resume where it stopped; writes report.csv, report.md and plots.",
    ),
    "compare": (
        "a pipeline per model, then one table and plots",
        "Writes compare.csv, compare.md and compare.png in <project>/<name>.",
    ),
}


def load_verbs() -> dict:
    from .args import VERBS

    for name in VERB_MODULES:
        importlib.import_module(f"yoloslim.{name}")
    return VERBS


def parse_value(text: str):
    """'3' -> 3, '0.5' -> 0.5, 'true' -> True, 'none' -> None, anything else stays a string (the verb's
    argument rules decide what it may be)."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_args(words: list[str]) -> dict:
    kwargs = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise YoloslimError(f"argument '{word}' is not key=value; write e.g. model=yolov8n.yaml")
        key = key.replace("-", "_")
        if key in kwargs:
            raise YoloslimError(f"{key}= is given twice; give it once")
        kwargs[key] = parse_value(value)
    return kwargs


def summary(name: str) -> str:
    return ABOUT[name][0] if name in ABOUT else ""


def shown(key: str, value) -> str:
    """A default as it is typed on the command line: 0.6,0.7 rather than (0.6, 0.7); unset rather than None."""
    if value is None:
        return "auto" if key == "sr" else "unset"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def usage(name: str, fn) -> str:
    """`yoloslim help <verb>`: what it does, then each argument with its meaning and default."""
    from .args import REQUIRED, TRAIN_ARG_HELP, argument_help

    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "verbose"]
    required = [p.name for p in params if p.default is p.empty and p.kind is not p.VAR_KEYWORD]
    required += [k for k in REQUIRED.get(name, ()) if k not in required]
    line = [f"{k}=..." for k in required] + ["[key=value ...]"]
    width = 16
    wrap = lambda text, indent: textwrap.fill(  # noqa: E731
        text, 110, initial_indent=indent, subsequent_indent=" " * (width + 4), break_on_hyphens=False
    )
    about = ABOUT.get(name, ("", ""))
    out = [
        f"usage: yoloslim {name} " + " ".join(line),
        "",
        textwrap.fill(f"{about[0][:1].upper()}{about[0][1:]}. {about[1]}", 110),
        "",
    ]
    out.append("arguments:")
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            continue
        default = "required" if p.name in required else f"default: {shown(p.name, p.default)}"
        out.append(wrap(f"{argument_help(name, p.name)} ({default})", f"  {p.name + '=':<{width}}  "))
    if getattr(fn, "trains", False):
        out += ["", "and any Ultralytics training argument, e.g.:"]
        for key, text in {**TRAIN_ARG_HELP, **training_defaults(name)}.items():
            out.append(wrap(text, f"  {key + '=':<{width}}  "))
    elif any(p.kind is p.VAR_KEYWORD for p in params):
        out += ["", "and any argument of 'yoloslim help pipeline', for each model's pipeline"]
    out += ["", "Add verbose=True for a full traceback on errors, verbose=False for warnings only."]
    return "\n".join(out)


def training_defaults(name: str) -> dict:
    """What the training verbs do by default where they differ from Ultralytics (read from trainer.py)."""
    from .trainer import FINETUNE_OPTIMIZER, SPARSE_LR0

    if name == "finetune":
        optimizer = "{optimizer}, as plain training gets".format(**FINETUNE_OPTIMIZER)
        return {"optimizer": f"auto, SGD, AdamW, Adam, ... (default: {optimizer})"}
    if name == "sparse":
        return {"optimizer": f"auto, SGD, AdamW, ... (default: auto, which is SGD at lr0={SPARSE_LR0} here)"}
    return {}


def verb_list(verbs: dict, group: str | None = None) -> str:
    names = [v for v in verbs if group is None or v.startswith(group + " ")]
    width = max(map(len, names))
    return "\n".join(f"  {v:<{width}}  {summary(v)}" for v in names)


def print_help(topic: list[str]) -> None:
    verbs = load_verbs()
    name = " ".join(topic)
    if name in verbs:
        print(usage(name, verbs[name]))
        return
    if name in GROUPS:
        print(f"usage: yoloslim {name} <verb> key=value ...   ({GROUPS[name]})\n\n{verb_list(verbs, name)}")
        return
    if topic:
        raise YoloslimError(f"unknown verb '{name}'; run 'yoloslim help' for the list")
    print(
        "usage: yoloslim <verb> key=value ...\n\n"
        "Make a YOLO model smaller and faster by Network Slimming: sparse-train, prune, finetune, export.\n\n"
        f"verbs:\n{verb_list(verbs)}\n\n"
        "'yoloslim help <verb>' (or yoloslim <verb> --help) shows a verb's arguments.\n"
        "--version shows the versions of yoloslim, Ultralytics and torch."
    )


def resolve(words: list[str], verbs: dict) -> tuple[str, list[str]]:
    """Find the longest verb (one or two words) at the start of argv."""
    for n in (2, 1):
        name = " ".join(words[:n])
        if name in verbs:
            return name, words[n:]
    if words[0] in GROUPS:
        choices = ", ".join(v.split(" ", 1)[1] for v in verbs if v.startswith(words[0] + " "))
        raise YoloslimError(f"unknown verb '{' '.join(words[:2])}'; the {words[0]} verbs are {choices}")
    raise YoloslimError(f"unknown verb '{' '.join(words[:2])}'; run 'yoloslim help' for the list")


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    def of(package):
        try:
            return installed(package)
        except PackageNotFoundError:
            return "not installed"

    return f"yoloslim {__version__} (Ultralytics {of('ultralytics')}, torch {of('torch')})"


def loggers() -> list:
    from ultralytics.utils import LOGGER as ULTRALYTICS

    return [LOGGER, ULTRALYTICS]


def quiet() -> None:
    """verbose=False: warnings and errors only, from yoloslim and from Ultralytics (until main returns)."""

    for logger in loggers():
        logger.setLevel(logging.WARNING)


def on_sigterm(signum, frame):
    raise KeyboardInterrupt  # unwinds through every finally: temporary files are removed


HELP = ("help", "-h", "--help")


def main(argv: list[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    verbose = any(w.lower() in ("verbose=true", "verbose=1") for w in words)
    terminated = []
    levels = []
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, lambda *a: (terminated.append(1), on_sigterm(*a)))
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        if words[:1] == ["--version"]:
            print(version())
            return 0
        if not words or words[0] in HELP:
            print_help(words[1:])
            return 0
        if words[0] in GROUPS and len(words) == 1 or any(w in HELP[1:] for w in words[1:]):
            print_help([w for w in words if w not in HELP and "=" not in w])  # yoloslim data; yoloslim prune -h
            return 0
        levels = [(logger, logger.level) for logger in loggers()]
        name, rest = resolve(words, load_verbs())
        kwargs = parse_args(rest)
        if kwargs.pop("verbose", None) in (False, 0, "no"):
            quiet()
        load_verbs()[name](**kwargs)
        return 0
    except YoloslimError as e:
        if verbose:
            traceback.print_exc()
        print(f"yoloslim: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the output's reader left (e.g. `| head`): nothing to report
        sys.stderr = open(os.devnull, "w")
        return 0
    except OSError as e:  # a file we could not read or write, found while working
        if verbose:
            traceback.print_exc()
        where = f"{e.filename}: " if e.filename else ""
        print(
            f"yoloslim: error: {where}{e.strerror or e}; check the path, its permissions and the free space",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("yoloslim: terminated" if terminated else "yoloslim: interrupted", file=sys.stderr)
        return 143 if terminated else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        for logger, level in levels:
            logger.setLevel(level)
        if argv is None:  # the process ends now: a late Ctrl-C must not turn a finished run into a signal exit
            signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
