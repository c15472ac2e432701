"""yoloslim: Network Slimming (Liu et al., ICCV 2017) for Ultralytics YOLO detectors (and segment, pose, obb).

The verbs of the command line are functions here, with the same arguments and the same checks:

    import yoloslim
    sparse_pt = yoloslim.sparse("yolov8n.pt", data="tea.yaml", epochs=50)
    result = yoloslim.prune(sparse_pt, ratio=0.5)           # result.yolo, result.slim, result.plan
    best = yoloslim.finetune(result.slim, data="tea.yaml", epochs=30)
    onnx = yoloslim.export(best, imgsz=640)

Stock Ultralytics training keeps a slim model's width with yoloslim's trainers:
YOLO("slim.pt").train(data=..., trainer=yoloslim.SlimTrainer), or
trainer=yoloslim.SparseTrainer.using(sr=1.0) for sparse training; for the other tasks
SlimSegmentationTrainer, SlimPoseTrainer, SlimOBBTrainer and their Sparse* twins.
"""

import importlib
import os
import sys
import types

# Offline by default: Ultralytics must never try to download weights, fonts or datasets for us.
# Set before anything imports ultralytics; a user can still export YOLO_OFFLINE=0 to opt out.
os.environ.setdefault("YOLO_OFFLINE", "1")

__version__ = "0.1.0"


from .errors import YoloslimError  # noqa: E402  (after YOLO_OFFLINE is set)

# The public API, loaded on first use (PEP 562): `yoloslim --version`, `yoloslim help` and a Ctrl-C in the first
# seconds need not wait for torch and Ultralytics. name -> (module, attribute)
_API = {
    "prune": ("pruning", "prune"),
    "inspect": ("pruning", "inspect"),
    "PruneResult": ("pruning", "PruneResult"),
    "sweep": ("sweep", "sweep"),
    "train": ("trainer", "train"),
    "sparse": ("trainer", "sparse"),
    "finetune": ("trainer", "finetune"),
    "export": ("onnx_export", "export"),
    "pipeline": ("flow", "pipeline"),
    "compare": ("study", "compare"),
    "check_data": ("data", "check"),
    "synth_data": ("data", "synth"),
    "convert_data": ("convert", "convert"),
    "tile_data": ("convert", "tile"),
    **{
        name: ("trainer", name)
        for name in (
            "SlimTrainer",
            "SparseTrainer",
            "SlimSegmentationTrainer",
            "SparseSegmentationTrainer",
            "SlimPoseTrainer",
            "SparsePoseTrainer",
            "SlimOBBTrainer",
            "SparseOBBTrainer",
        )
    },
}
__all__ = ["YoloslimError", *_API, "__version__"]


def __getattr__(name):
    if name not in _API:
        raise AttributeError(f"module 'yoloslim' has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        # Importing the submodule yoloslim.sweep sets the package's attribute `sweep` to that module; the verb of
        # the same name keeps it (as it did when this file imported the verbs itself).
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
