"""Compare model sizes x prune levels: a resumable pipeline per model, then one table and plots.

    python scripts/compare.py                                   # yolov5n/s/m and yolov8n/s/m, levels 0.5,0.6,0.7
    python scripts/compare.py models=yolov8n.yaml,yolo11n.yaml levels=0.5 sparse_epochs=20
    python scripts/compare.py runs=runs/yoloslim/pipeline,runs/other   # only tabulate finished pipelines

Arguments are those of `yoloslim compare` (and of `yoloslim pipeline`, passed on to each model's run).
Writes runs/yoloslim/compare/compare.{csv,md,png}.
"""

import sys

from yoloslim.cli import main

DEFAULT_MODELS = "models=yolov5n.yaml,yolov5s.yaml,yolov5m.yaml,yolov8n.yaml,yolov8s.yaml,yolov8m.yaml"

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a.startswith(("models=", "runs=")) for a in args):
        args.insert(0, DEFAULT_MODELS)
    sys.exit(main(["compare", *args]))
