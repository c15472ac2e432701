"""Is a slim model as good as its baseline? A paired difference over the same val images, with its interval.

A val split of a few hundred objects gives mAP50-95 a spread that seeds alone show (about 0.01 on the tree data),
so a difference between two models is only a result with its noise beside it. Both models are validated by
Ultralytics' own validator on the same images; its per-image matches (true positives at the 10 IoU thresholds,
confidences, classes) are kept, and the images are resampled with replacement (a paired bootstrap): each
resample scores both models on the same images, so what the images have in common cancels and the interval is
that of the difference itself. mAP is recomputed by Ultralytics' ap_per_class, exactly as the validator does.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from ultralytics import YOLO
from ultralytics.utils.metrics import ap_per_class

from . import classic
from .checkpoint import load_model, save_checkpoint, task_of
from .errors import YoloslimError
from .quiet import quiet_ultralytics

# the validator's true-positive matrix of each task's own metric (mask, pose, rotated box, box)
TP_OF_TASK = {"detect": "tp", "obb": "tp", "segment": "tp_m", "pose": "tp_p"}
RESAMPLES = 1000
CONFIDENCE = 0.95


def per_image(model, data, imgsz: int, batch: int = 16) -> dict[str, list[np.ndarray]]:
    """The validator's matches per val image (tp, conf, pred_cls, target_cls), in the val loader's order, which is
    the same for every model on the same data and imgsz."""
    module = load_model(model)
    tp_key = TP_OF_TASK[task_of(module)]
    seen: dict[str, list[np.ndarray]] = {}

    def keep(validator) -> None:  # the validator clears its lists once it has computed mAP: copy them per batch
        stats = validator.metrics.stats
        seen.update({k: list(stats[k]) for k in ("conf", "pred_cls", "target_cls")}, tp=list(stats[tp_key]))

    validate(model, module, data, imgsz, batch, callbacks={"on_val_batch_end": keep})
    if not seen.get("tp"):
        raise YoloslimError(f"the val split of {data} has no images to compare the models on")
    return seen


def validate(model, module, data, imgsz: int, batch: int, callbacks: dict | None = None):
    """Ultralytics' validator on model (a path or module; module: it loaded), its summaries held back; a classic
    YOLOv5 model through classic.validate, so both are matched and scored the same way. Returns its metrics."""
    with tempfile.TemporaryDirectory(prefix="yoloslim-val-") as tmp, quiet_ultralytics():  # one per level
        if classic.is_classic(module):
            return classic.validate(module, data, imgsz, batch, tmp, callbacks=callbacks)
        weights = model if isinstance(model, (str, Path)) else save_checkpoint(module, Path(tmp) / "m.pt")
        yolo = YOLO(str(weights))
        for event, fn in (callbacks or {}).items():
            yolo.add_callback(event, fn)
        return stock_val(yolo, data, imgsz, batch, tmp)


def stock_val(yolo: YOLO, data, imgsz: int, batch: int, folder, **settings):
    """YOLO.val on data's val split, writing nothing but into folder (a temporary one), its summary held back."""
    with quiet_ultralytics():
        return yolo.val(
            data=str(data),
            imgsz=imgsz,
            batch=batch,
            plots=False,
            verbose=False,
            project=str(folder),
            name="val",
            exist_ok=True,
            **settings,
        )


def map50_95(stats: dict[str, list[np.ndarray]], images) -> float:
    """mAP50-95 over the given image indices (repeats count as often as they appear)."""
    part = {k: np.concatenate([v[i] for i in images], 0) for k, v in stats.items()}
    if not len(part["target_cls"]):
        return 0.0
    ap = ap_per_class(part["tp"], part["conf"], part["pred_cls"], part["target_cls"])[5]
    return float(ap.mean()) if ap.size else 0.0


def paired_difference(
    stats_a: dict, stats_b: dict, resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0
) -> dict:
    """b - a in mAP50-95 on the same images, with a percentile bootstrap interval over the images."""
    n = len(stats_a["tp"])
    if n != len(stats_b["tp"]) or [len(t) for t in stats_a["target_cls"]] != [len(t) for t in stats_b["target_cls"]]:
        raise YoloslimError("the two models were validated on different images; compare them on the same data=")
    everything = range(n)
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n, n) for _ in range(resamples)]
    diffs = np.array([map50_95(stats_b, d) - map50_95(stats_a, d) for d in draws])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return {
        "delta": map50_95(stats_b, everything) - map50_95(stats_a, everything),
        "delta_low": float(low),
        "delta_high": float(high),
        "val_images": n,
        "val_objects": int(sum(len(t) for t in stats_a["target_cls"])),
    }


def holds(paired: dict, tolerance: float = 0.01) -> str:
    """Whether b is as good as a (paired_difference's dict): 'within 0.01' (delta >= -tolerance), 'within noise'
    (the interval reaches 0), or '' (neither): the wider of the two criteria decides, and the answer says which."""
    if paired["delta"] >= -tolerance:
        return f"within {tolerance:g}"
    if paired["delta_high"] >= 0:
        return "within noise"
    return ""
