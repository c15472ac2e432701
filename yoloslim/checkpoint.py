"""Loading and saving Ultralytics detection models, with one clear error per bad input."""

from __future__ import annotations

import copy
import io
from datetime import datetime
from pathlib import Path

import torch
from torch import nn

from . import YoloslimError, __version__


def load_model(model, verbose: bool = False) -> nn.Module:
    """A stock Ultralytics DetectionModel (float32, CPU) from a .pt path, a model yaml, YOLO or the module."""
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    if isinstance(model, YOLO):
        model = model.model
    if isinstance(model, nn.Module):
        return _check_task(model, "the given model")
    path = Path(str(model))
    if path.suffix in (".yaml", ".yml"):
        try:
            return DetectionModel(str(path), verbose=verbose)
        except FileNotFoundError:
            raise YoloslimError(f"model yaml {path} does not exist; give a file or a stock name like "
                                "yolov8n.yaml") from None
        except Exception as e:  # Ultralytics raises many kinds for a bad yaml
            raise YoloslimError(f"could not build a model from {path}: {type(e).__name__}: {e}") from None
    if path.suffix != ".pt":
        raise YoloslimError(f"model={model} is neither a .pt checkpoint nor a .yaml model config")
    ckpt = load_checkpoint(path)
    candidate = ckpt.get("ema") or ckpt.get("model")
    if not isinstance(candidate, nn.Module):
        raise YoloslimError(f"{path} is a checkpoint without a model (no 'model' or 'ema' entry); "
                            "give the best.pt/last.pt that Ultralytics training wrote")
    m = candidate.float().cpu()
    if isinstance(ckpt.get("train_args"), dict):
        m.args = ckpt["train_args"]
    return _check_task(m, str(path))


def load_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise YoloslimError(f"{path} does not exist; check the path (your own weights go in weights/)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise YoloslimError(f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?): "
                            f"{type(e).__name__}") from None
    if not isinstance(ckpt, dict):
        raise YoloslimError(f"{path} is not an Ultralytics checkpoint (a dict with 'model'); got {type(ckpt).__name__}")
    return ckpt


def _check_task(model: nn.Module, what: str) -> nn.Module:
    from ultralytics.nn.modules import Conv
    from ultralytics.nn.tasks import DetectionModel

    if type(model) is not DetectionModel:
        task = type(model).__name__.replace("Model", "").lower()
        raise YoloslimError(f"{what} is a {type(model).__name__} ({task}); yoloslim supports detection models only")
    if any(isinstance(m, Conv) and not hasattr(m, "bn") for m in model.modules()):
        raise YoloslimError(f"{what} is fused (its BatchNorms were folded into convs); "
                            "use the unfused checkpoint that training saved")
    return model


def save_checkpoint(model: nn.Module, path, **extra) -> Path:
    """A standard Ultralytics checkpoint: YOLO(path) loads it without yoloslim installed."""
    from ultralytics import __version__ as ultralytics_version

    from .io import atomic_write

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
        "train_args": dict(args),
        "yoloslim": {"version": __version__, **extra},  # plain data only: loads without yoloslim
    }
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    return atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))
