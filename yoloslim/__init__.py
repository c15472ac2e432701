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

import os

# Offline by default: Ultralytics must never try to download weights, fonts or datasets for us.
# Set before anything imports ultralytics; a user can still export YOLO_OFFLINE=0 to opt out.
os.environ.setdefault("YOLO_OFFLINE", "1")

__version__ = "0.1.0"


class YoloslimError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it (one line)."""


# The public API (below the error class: every module imports it from here).
from .convert import convert as convert_data  # noqa: E402
from .convert import tile as tile_data  # noqa: E402
from .data import check as check_data  # noqa: E402
from .data import synth as synth_data  # noqa: E402
from .flow import pipeline  # noqa: E402
from .onnx_export import export  # noqa: E402
from .pruning import PruneResult, inspect, prune  # noqa: E402
from .study import compare  # noqa: E402
from .sweep import sweep  # noqa: E402
from .trainer import (  # noqa: E402
    SlimOBBTrainer,
    SlimPoseTrainer,
    SlimSegmentationTrainer,
    SlimTrainer,
    SparseOBBTrainer,
    SparsePoseTrainer,
    SparseSegmentationTrainer,
    SparseTrainer,
    finetune,
    sparse,
    train,
)

__all__ = [
    "YoloslimError",
    "prune",
    "inspect",
    "sweep",
    "train",
    "sparse",
    "finetune",
    "export",
    "pipeline",
    "compare",
    "check_data",
    "synth_data",
    "convert_data",
    "tile_data",
    "SlimTrainer",
    "SparseTrainer",
    "SlimSegmentationTrainer",
    "SparseSegmentationTrainer",
    "SlimPoseTrainer",
    "SparsePoseTrainer",
    "SlimOBBTrainer",
    "SparseOBBTrainer",
    "PruneResult",
    "__version__",
]
