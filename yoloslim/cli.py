"""The command line: `yoloslim <verb> key=value ...`. Thin: parsing and dispatch to the Python API.

The verbs, their arguments and their help come from the functions themselves (registered by
yoloslim.args.verb), so the CLI and the Python API cannot disagree.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import signal
import sys
import traceback

from ultralytics.utils import LOGGER as ULTRALYTICS

from . import YoloslimError
from .args import VERBS
from .log import LOGGER

# import order = help order
VERB_MODULES = ("data", "convert", "trainer", "pruning", "sweep", "onnx_export", "flow", "study")


def load_verbs() -> dict:
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


def summary(fn) -> str:
    return (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " ")


def usage(name: str, fn) -> str:
    """`yoloslim help <verb>`: its arguments with their defaults, then its docstring."""
    args = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            args.append(
                "[any Ultralytics train argument, e.g. lr0=0.01]"
                if getattr(fn, "trains", False)
                else "[the arguments of 'yoloslim help pipeline']"
            )
        elif p.name != "verbose":
            args.append(f"{p.name}=<required>" if p.default is p.empty else f"{p.name}={p.default}")
    return f"usage: yoloslim {name} " + " ".join(args) + "\n\n" + (inspect.getdoc(fn) or "")


def print_help(topic: list[str]) -> None:
    verbs = load_verbs()
    name = " ".join(topic)
    if name in verbs:
        print(usage(name, verbs[name]))
        return
    if topic:
        raise YoloslimError(f"unknown verb '{name}'; run 'yoloslim help' for the list")
    print("usage: yoloslim <verb> key=value ...   ('yoloslim help <verb>' for its arguments)\n\nverbs:")
    width = max(map(len, verbs))
    for verb_name, fn in verbs.items():
        print(f"  {verb_name:<{width}}  {summary(fn)}")
    print("\nAdd verbose=True to any verb for a full traceback on errors, verbose=False for warnings only.")


def resolve(words: list[str], verbs: dict) -> tuple[str, list[str]]:
    """Find the longest verb (one or two words) at the start of argv."""
    for n in (2, 1):
        name = " ".join(words[:n])
        if name in verbs:
            return name, words[n:]
    raise YoloslimError(f"unknown verb '{' '.join(words[:2])}'; run 'yoloslim help' for the list")


def loggers() -> list:
    return [LOGGER, ULTRALYTICS]


def quiet() -> None:
    """verbose=False: warnings and errors only, from yoloslim and from Ultralytics (until main returns)."""

    for logger in loggers():
        logger.setLevel(logging.WARNING)


def on_sigterm(signum, frame):
    raise KeyboardInterrupt  # unwinds through every finally: temporary files are removed


def main(argv: list[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    verbose = any(w.lower() in ("verbose=true", "verbose=1") for w in words)
    terminated = []
    levels = [(logger, logger.level) for logger in loggers()]
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, lambda *a: (terminated.append(1), on_sigterm(*a)))
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        if not words or words[0] in ("help", "-h", "--help"):
            print_help(words[1:])
            return 0
        name, rest = resolve(words, load_verbs())
        kwargs = parse_args(rest)
        if kwargs.pop("verbose", None) in (False, 0, "no"):
            quiet()
        VERBS[name](**kwargs)
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


if __name__ == "__main__":
    sys.exit(main())
