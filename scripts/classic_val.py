"""How yoloslim's scoring of a classic YOLOv5 model (Ultralytics' validator through classic.AsUltralytics) compares
with the yolov5 repository's own val.py, on the same checkpoint and data. Prints a table, writes a CSV.

    python scripts/classic_val.py model=runs/study/coco-trees-classic/yolov5s/pretrained.pt \
        data=datasets/trees-tiles160/data.yaml imgsz=160 out=docs/results/coco-trees-classic/validators.csv
"""

import sys
import tempfile
from pathlib import Path

import pandas as pd
from ultralytics.models.yolo.detect import DetectionValidator

from yoloslim import classic
from yoloslim.checkpoint import load_model
from yoloslim.classic_train import data_file


def ultralytics_val(model, data: str, imgsz: int, batch: int, iou: float, folder: str) -> tuple[float, float]:
    args = {"task": "detect", "mode": "val", "data": data, "imgsz": imgsz, "batch": batch, "rect": True}
    args.update(plots=False, verbose=False, project=folder, name="val", exist_ok=True, iou=iou)
    metrics = DetectionValidator(args=args)(model=classic.AsUltralytics(model))
    return metrics["metrics/mAP50(B)"], metrics["metrics/mAP50-95(B)"]


def repository_val(weights: str, data: Path, imgsz: int, batch: int, iou: float, folder: str) -> tuple[float, float]:
    import yolov5.utils.general as general
    import yolov5.val as val

    general.check_font = lambda *args, **kwargs: None  # offline: its label font is not needed for scores
    with classic.trusted_loads():
        results = val.run(
            data=str(data), weights=weights, imgsz=imgsz, batch_size=batch, iou_thres=iou, plots=False, project=folder
        )
    return results[0][2], results[0][3]


def main(model: str, data: str, imgsz: int = 640, batch: int = 8, out: str | None = None) -> pd.DataFrame:
    module = classic.retarget(load_model(model), "yolov5").float().eval()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        resolved = data_file(data, Path(tmp))  # absolute paths: its val.py resolves relative ones in its package
        for iou in (0.7, 0.6):
            m50, m = ultralytics_val(module, data, imgsz, batch, iou, tmp)
            rows.append({"validator": "Ultralytics (yoloslim)", "nms_iou": iou, "mAP50": m50, "mAP50-95": m})
        m50, m = repository_val(model, resolved, imgsz, batch, 0.6, tmp)
        rows.append({"validator": "yolov5 val.py", "nms_iou": 0.6, "mAP50": m50, "mAP50-95": m})
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False, floatfmt=".4f"))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False)
    return table


if __name__ == "__main__":
    given = dict(arg.split("=", 1) for arg in sys.argv[1:])
    main(
        given["model"],
        given["data"],
        int(given.get("imgsz", 640)),
        int(given.get("batch", 8)),
        given.get("out"),
    )
