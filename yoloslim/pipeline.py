"""The whole flow in one run folder: pretrain -> baseline | sparse -> prune at levels -> finetune -> val -> ONNX -> report.

Sparse training starts from a trained model (what a user brings), so the penalty works on channels the
network already uses and the loss can tell it which ones it needs (from a fresh init, an earlier, proximal
L1 took 96% of the gammas below 1e-3 within one epoch, mAP 0). So:

    pretrained.pt           the model trained for pretrain_epochs (skipped when model= is a trained .pt)
    baseline.pt             pretrained + sparse_epochs + finetune_epochs of plain training: the reference,
                            trained exactly as long as the slim models
    sparse.pt               pretrained + sparse_epochs of sparse training
    prune-<level>/slim.pt   pruned (plus plan.json, layers.csv, channels.png)
    slim-<level>-ft.pt      finetuned for finetune_epochs
    *.onnx                  exported and checked against onnxruntime (baseline and finetuned models)
    metrics.json            every measured number, so a resumed run does not measure again
    report.csv / report.md / report.png

Every stage writes a file a user can keep, and a stage whose file exists is skipped, so an interrupted
pipeline resumes where it stopped (a stage interrupted mid-training resumes from its last.pt).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from . import YoloslimError
from .io import atomic_write, atomic_write_text


def as_list(value) -> list[str]:
    """'a,b' or ['a', 'b'] -> ['a', 'b'] (CLI values arrive as comma-separated strings)."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [str(x).strip() for x in items if str(x).strip()]


def banner(text: str) -> None:
    print(f"\n{'=' * 8} {text} {'=' * max(8, 70 - len(text))}", flush=True)


class Metrics:
    """metrics.json: one entry per measured thing, written after each measurement."""

    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str, compute):
        if key not in self.data:
            self.data[key] = compute()
            atomic_write_text(self.path, json.dumps(self.data, indent=1))
        return self.data[key]


def validate(weights: Path, data, imgsz: int, batch: int) -> dict:
    from ultralytics import YOLO

    scratch = (Path(weights).parent / ".val").resolve()  # relative, Ultralytics would put it under its runs_dir
    m = YOLO(str(weights)).val(data=str(data), imgsz=imgsz, batch=batch, plots=False, verbose=False,
                              project=str(scratch), name=Path(weights).stem, exist_ok=True)
    shutil.rmtree(scratch, ignore_errors=True)
    return {"mAP50": float(m.box.map50), "mAP50-95": float(m.box.map)}


def size_stats(weights: Path) -> dict:
    from .checkpoint import load_model
    from .prune import layer_stats

    model = load_model(weights)
    return {"params": sum(p.numel() for p in model.parameters()),
            "gflops": float(layer_stats(model, 640).gflops.sum()),
            "pt_mb": Path(weights).stat().st_size / 2**20}


def stage(out: Path, title: str, make) -> Path:
    """Run `make(tmp_dir)` -> produced file, unless `out` exists; move the file to `out` in one rename."""
    if out.exists():
        print(f"[skip] {title}: {out} exists")
        return out
    banner(title)
    produced = Path(make())
    atomic_write(out, lambda tmp: shutil.copyfile(produced, tmp))
    return out


def pipeline(model: str = "yolov8n.yaml", data: str | None = None, levels=(0.6, 0.7),
             pretrain_epochs: int = 6, sparse_epochs: int = 10, finetune_epochs: int = 4, sr: float | None = None,
             sr_step: float | None = None, penalty: str | None = None, sr_share: float = 0.6,
             imgsz: int = 160, batch: int = 16, nbs: int = 16, workers: int = 2, device: str = "cpu",
             project: str = "runs/yoloslim",
             name: str = "pipeline", seed: int = 0, export: bool = True, round_to: int = 8) -> Path:
    """pretrain_epochs: training of model= before anything else (0 when model= is already trained: a .pt).
    nbs: images per optimizer step (Ultralytics' nominal batch). 16 rather than Ultralytics' 64 because a small
    dataset then still gets enough steps: 400 images make 25 steps an epoch instead of 6.
    round_to: kept channel counts are multiples of it, which CPU/GPU kernels run faster (1 = exact ratio).
    sr, sr_step, penalty, sr_share: sparse training's settings (yoloslim/trainer.py; its defaults when None).
    sr_share: 0.6 (not None) rather than sparse training's 0.42, because the pipeline aims at speed as well as size: the
    default penalty zeros the wide layers' channels first, which hold few of the GFLOPs, and 60% of the channels
    make a >= 50% cut (58% for yolov8n, pruned at level 0.6)."""
    from .prune import prune
    from .trainer import check_sparse_settings, finetune, sparse, train

    chosen = {"sr": sr, "sr_step": sr_step, "penalty": penalty, "sr_share": sr_share}
    settings = check_sparse_settings({k: v for k, v in chosen.items() if v is not None})  # now, not after hours

    given = levels
    try:
        levels = [float(x) for x in as_list(levels)]
    except ValueError:
        levels = []
    if not levels or any(not 0 < r < 1 for r in levels):
        raise YoloslimError(f"levels={given} must be prune ratios between 0 and 1, e.g. levels=0.3,0.5,0.7")
    for key, value in (("pretrain_epochs", pretrain_epochs), ("sparse_epochs", sparse_epochs),
                       ("finetune_epochs", finetune_epochs)):
        if not isinstance(value, int) or value < (0 if key == "pretrain_epochs" else 1):
            raise YoloslimError(f"{key}={value!r} must be a whole number >= {0 if key == 'pretrain_epochs' else 1}")
    if pretrain_epochs == 0 and not str(model).endswith(".pt"):
        raise YoloslimError(f"pretrain_epochs=0 needs a trained model= (.pt); {model} would start untrained")
    run = Path(project) / name
    run.mkdir(parents=True, exist_ok=True)
    metrics = Metrics(run / "metrics.json")
    common = {"imgsz": imgsz, "batch": batch, "nbs": nbs, "workers": workers, "device": device, "seed": seed,
              "project": str(run / "train"), "exist_ok": True, "plots": False, "val": False}
    after_pretrain = {**common, "warmup_epochs": 0}  # a trained model needs no warm-up

    if data is None:
        data = Path("datasets/tea-synth/data.yaml")
        if not data.exists():
            banner("generate the synthetic tea-sprout dataset")
            from .data import synth

            data = synth(data.parent)
    rows = []
    start = Path(model)
    if pretrain_epochs:
        start = stage(run / "pretrained.pt", f"pretrain {model}: {pretrain_epochs} epochs",
                      lambda: resumable(train, run, "pretrain", model, data, epochs=pretrain_epochs, **common))
        rows.append(row(metrics, "pretrained", start, data, imgsz, batch, level=0.0, export=False))
    total = sparse_epochs + finetune_epochs
    baseline = stage(run / "baseline.pt", f"baseline: {total} more epochs of plain training",
                     lambda: resumable(train, run, "baseline", start, data, epochs=total, **after_pretrain))
    sparse_pt = stage(run / "sparse.pt", f"sparse training: {sparse_epochs} epochs",
                      lambda: resumable(sparse, run, "sparse", start, data, epochs=sparse_epochs,
                                        **settings, **after_pretrain))
    rows += [row(metrics, "baseline", baseline, data, imgsz, batch, level=0.0, export=export),
             row(metrics, "sparse", sparse_pt, data, imgsz, batch, level=0.0, export=False)]
    for level in levels:
        tag = f"{level:g}"
        slim = run / f"prune-{tag}" / "slim.pt"  # prune() writes slim.pt last, atomically
        if slim.exists():
            print(f"[skip] prune {tag}: {slim} exists")
        else:
            banner(f"prune {tag} of the prunable channels")
            prune(sparse_pt, ratio=level, round_to=round_to, project=run, name=f"prune-{tag}", exist_ok=True)
        rows.append(row(metrics, "pruned", slim, data, imgsz, batch, level=level, export=False))
        ft = stage(run / f"slim-{tag}-ft.pt", f"finetune the {tag} slim model: {finetune_epochs} epochs",
                   lambda: resumable(finetune, run, f"finetune-{tag}", slim, data, epochs=finetune_epochs,
                                     **after_pretrain))
        rows.append(row(metrics, "finetuned", ft, data, imgsz, batch, level=level, export=export))

    banner("report")
    from .report import pipeline_report

    table = pipeline_report(rows, run)
    print(table.to_markdown(index=False, floatfmt=".4g"))
    print(f"\nrun folder: {run.resolve()}\n  report: {run / 'report.md'}, {run / 'report.csv'}, {run / 'report.png'}")
    return run


def resumable(train_fn, run: Path, name: str, model, data, **kwargs) -> Path:
    """Start a training stage, or resume it from its last.pt when an earlier pipeline was interrupted."""
    import torch

    weights = run / "train" / name / "weights"
    if (weights / "last.pt").exists():
        ckpt = torch.load(weights / "last.pt", map_location="cpu", weights_only=False)
        if ckpt.get("epoch", -1) == -1 and (weights / "best.pt").exists():
            return weights / "best.pt"  # it had finished; only the copy to the stage file was missing
        print(f"resuming {name} from {weights / 'last.pt'} (epoch {ckpt['epoch'] + 1})")
        return train_fn(weights / "last.pt", data, name=name, resume=str(weights / "last.pt"), **kwargs)
    return train_fn(model, data, name=name, **kwargs)


def row(metrics: Metrics, stage_name: str, weights: Path, data, imgsz: int, batch: int, level: float,
        export: bool) -> dict:
    key = weights.stem if weights.name != "slim.pt" else f"{weights.parent.name}-slim"
    out = {"stage": stage_name, "level": level, "weights": str(weights)}
    out.update(metrics.get(f"{key}/size", lambda: size_stats(weights)))
    out.update(metrics.get(f"{key}/val", lambda: validate(weights, data, imgsz, batch)))
    if export:
        out.update(metrics.get(f"{key}/onnx", lambda: onnx_stats(weights, imgsz)))
    return out


def onnx_stats(weights: Path, imgsz: int) -> dict:
    from .export import export_checked

    onnx, report = export_checked(weights, imgsz=imgsz, runs=50, threads=1, verbose=True)
    return {"onnx": str(onnx), "onnx_mb": Path(onnx).stat().st_size / 2**20,
            "latency_ms": report["latency"]["median_ms"], "onnx_max_diff": max(report["max_diff"].values())}
