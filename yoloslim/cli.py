"""The command line: `yoloslim <verb> key=value ...`. Thin: parsing and dispatch only."""

from __future__ import annotations

import sys
import traceback

from . import YoloslimError

# verb -> (one-line help, "module:function"). Functions take keyword arguments named as on the CLI.
VERBS = {
    "data synth": ("write the synthetic tea-sprout dataset (out=, train=, val=, imgsz=, seed=, overwrite=)",
                   "data:synth"),
    "data check": ("validate a YOLO data.yaml before training (data=)", "data:check"),
    "train": ("plain Ultralytics training, the unpruned baseline (model=, data=, epochs=, imgsz=, ...)",
              "trainer:train"),
    "sparse": ("sparse training, a penalty on prunable BN gammas (model=, data=, sr=, sr_schedule=, sr_step=, "
               "penalty=wide|lowest|l1, sr_share=, epochs=, ...)",
               "trainer:sparse"),
    "finetune": ("train a pruned model at its slim width (model=slim.pt, data=, epochs=, ...)", "trainer:finetune"),
    "export": ("ONNX export of a (slim) model, checked against onnxruntime (model=, imgsz=, dynamic=, simplify=, "
               "opset=)", "export:export"),
    "pipeline": ("the whole flow: train, sparse train, prune at several levels, finetune, export, report "
                 "(what make demo runs)", "pipeline:pipeline"),
    "compare": ("several models x prune levels in one table and plots (models=, levels=, or runs= of finished "
                "pipelines)", "compare:compare"),
    "inspect": ("show the channel groups of a model, which are frozen and why, and its gammas (model=)",
                "prune:inspect"),
    "prune": ("remove low-gamma channels: model=, ratio= | threshold=, min_keep=, round_to=, plan=",
              "prune:prune"),
}


def parse_value(text: str):
    """'3' -> 3, '0.5' -> 0.5, 'true' -> True, 'none' -> None, anything else stays a string."""
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
        kwargs[key.replace("-", "_")] = parse_value(value)
    return kwargs


def print_help() -> None:
    print("usage: yoloslim <verb> key=value ...\n\nverbs:")
    width = max(map(len, VERBS))
    for verb, (text, _) in VERBS.items():
        print(f"  {verb:<{width}}  {text}")
    print("\nAdd verbose=True to any verb for a full traceback on errors.")


def resolve(words: list[str]) -> tuple[str, list[str]]:
    """Find the longest verb (one or two words) at the start of argv."""
    for n in (2, 1):
        verb = " ".join(words[:n])
        if verb in VERBS:
            return verb, words[n:]
    raise YoloslimError(f"unknown verb '{' '.join(words[:2])}'; run 'yoloslim help' for the list")


def main(argv: list[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or words[0] in ("help", "-h", "--help"):
        print_help()
        return 0
    verbose = any(w.lower() in ("verbose=true", "verbose=1") for w in words)
    try:
        verb, rest = resolve(words)
        kwargs = parse_args(rest)
        kwargs.pop("verbose", None)
        module_name, func_name = VERBS[verb][1].split(":")
        module = __import__(f"yoloslim.{module_name}", fromlist=[func_name])
        getattr(module, func_name)(**kwargs)
        return 0
    except YoloslimError as e:
        if verbose:
            traceback.print_exc()
        print(f"yoloslim: error: {e}", file=sys.stderr)
        return 2
    except TypeError as e:
        # unknown keyword for the verb's function
        if verbose or "unexpected keyword argument" not in str(e):
            raise
        bad = str(e).split("'")[1] if "'" in str(e) else str(e)
        print(f"yoloslim: error: '{bad}' is not an argument of '{verb}'; run 'yoloslim help'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("yoloslim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
