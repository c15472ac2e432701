"""The whole flow in one run folder: pretrain -> baseline | sparse -> prune -> finetune -> val -> ONNX -> report.

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
pipeline resumes where it stopped (a stage interrupted mid-training resumes from its last.pt). stages.json
records the settings behind every stage (and the stages before it); a rerun whose settings differ for a stage
already started is refused with one line naming the setting, so a report never mixes two runs' files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from pathlib import Path

import torch

from . import classic
from .args import as_list, verb
from .checkpoint import check_stride, load_model, task_of
from .classic_train import FIXED, NBS
from .data import check, synth
from .errors import YoloslimError
from .io import atomic_write, atomic_write_text, owned
from .levels import accuracy
from .log import LOGGER
from .measure import layer_stats
from .onnx_export import export_with_report
from .paired import holds, paired_difference, per_image
from .plan import Plan
from .pruning import past_zeros, prune
from .slimming import zeroed_share_of
from .trainer import EMA_SPAN, FINETUNE_OPTIMIZER, SPARSE_LR0, check_sparse_settings, finetune, sparse, train


def banner(text: str) -> None:
    LOGGER.info(f"\n{'=' * 8} {text} {'=' * max(8, 70 - len(text))}")


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


def size_stats(weights: Path) -> dict:
    model = load_model(weights)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "gflops": float(layer_stats(model, 640).gflops.sum()),
        "pt_mb": Path(weights).stat().st_size / 2**20,
    }


def stage(out: Path, title: str, make) -> Path:
    """Run `make(tmp_dir)` -> produced file, unless `out` exists; move the file to `out` in one rename."""
    if out.exists():
        LOGGER.info(f"[skip] {title}: {out} exists")
        return out
    banner(title)
    produced = Path(make())
    atomic_write(out, lambda tmp: shutil.copyfile(produced, tmp))
    return out


CLOSING = "min(10, epochs // 2)"  # the rule as the run records say it (epochs are recorded apart)


def closing(epochs: int) -> int:
    """The epochs at the end of a continued stage trained without mosaic: Ultralytics' 10, at most half the run."""
    return min(10, epochs // 2)


@verb("pipeline")
def pipeline(
    model: str = "yolov8n.yaml",
    data: str | None = None,
    levels=(0.6, 0.7),
    pretrain_epochs: int = 6,
    sparse_epochs: int = 10,
    finetune_epochs: int = 20,
    sr: float | None = None,
    sr_step: float | None = None,
    penalty: str | None = None,
    sr_share: float = 0.6,
    imgsz: int = 160,
    batch: int = 16,
    nbs: int = 16,
    workers: int = 2,
    device: str | None = None,
    project: str = "runs/yoloslim",
    name: str = "pipeline",
    seed: int = 0,
    export: bool = True,
    round_to: int = 8,
) -> Path:
    """The whole flow in one resumable run folder: train, sparse train, prune at levels, finetune, export, report.

    pretrain_epochs: training of model= before anything else (0 when model= is already trained: a .pt).
    finetune_epochs: 20, not 4: from a converged COCO-pretrained start, sparse training costs ~0.025 mAP50-95 and
    10 finetune epochs won back 0.01 of it, 20 all of it on four of six runs (docs/sparsity.md#from-a-converged-start).
    nbs: images per optimizer step (Ultralytics' nominal batch). 16 rather than Ultralytics' 64 because a small
    dataset then still gets enough steps: 400 images make 25 steps an epoch instead of 6.
    round_to: kept channel counts are multiples of it, which CPU/GPU kernels run faster (1 = exact ratio).
    sr, sr_step, penalty, sr_share: sparse training's settings (yoloslim/trainer.py; its defaults when None).
    sr_share: 0.6 (not None) rather than sparse training's 0.42, because the pipeline aims at speed as well as size: the
    default penalty zeros the wide layers' channels first, which hold few of the GFLOPs, and 60% of the channels
    make a >= 50% cut (58% for yolov8n, pruned at level 0.6). device: as Ultralytics (unset: the GPU if any)."""

    # Everything that can be wrong is found now, not after hours of training.
    chosen = {"sr": sr, "sr_step": sr_step, "penalty": penalty, "sr_share": sr_share}
    settings = check_sparse_settings({k: v for k, v in chosen.items() if v is not None})
    levels = [float(x) for x in as_list(levels)]
    if pretrain_epochs == 0 and not str(model).endswith(".pt"):
        raise YoloslimError(f"pretrain_epochs=0 needs a trained model= (.pt); {model} would start untrained")
    start_model = load_model(model)
    check_stride(start_model, imgsz)
    task = task_of(start_model)
    if data is None:  # the generated data, with this task's labels
        data = Path("datasets/tea-synth" + ("" if task == "detect" else f"-{task}")) / "data.yaml"
        if not data.exists():
            banner(f"generate the synthetic tea-sprout dataset ({task} labels)")

            data = synth(data.parent, task=task)
    check(data, task=task)
    run = Path(project) / name
    repository = classic.is_classic(start_model)
    if repository and nbs not in (batch, NBS):  # found now, not after the pretrain
        raise YoloslimError(
            f"nbs={nbs} with batch={batch}: the yolov5 repository's train.py, which trains classic models, steps "
            f"every batch (nbs={batch}) or every 64 images (nbs=64), not every {nbs} images"
        )
    if repository:
        LOGGER.info(
            "a classic YOLOv5 model: the yolov5 repository's train.py trains it, validating every epoch and keeping "
            "mosaic to the end, as it always does (the baseline's and finetunes' closing does not apply)"
        )
    usable = (lambda kw: {k: v for k, v in kw.items() if k not in FIXED}) if repository else (lambda kw: kw)  # noqa: E731
    with owned(run):
        common = {
            "imgsz": imgsz,
            "batch": batch,
            "nbs": nbs,
            "workers": workers,
            "device": device,
            "seed": seed,
            "project": str(run / "train"),
            "exist_ok": True,
            "plots": False,
            "val": False,
        }
        # A trained model needs no warm-up. Mosaic: on for the short sparse stage (a 4-epoch finetune without it lost
        # 0.026 mAP50-95 that one with it kept); the baseline and the finetunes end as the pretrain did, their last
        # min(10, half) epochs without it (the pretrain's converged model is tuned to whole images: with mosaic to
        # the end a yolov5nu finetune at 0.6 ended at 0.126, without it for the last 10 at 0.157), docs/sparsity.md.
        after_pretrain = {**common, "warmup_epochs": 0, "close_mosaic": 0}
        closed = lambda epochs: usable({**after_pretrain, "close_mosaic": closing(epochs)})  # noqa: E731
        common, after_pretrain = usable(common), usable(after_pretrain)

        # What makes each stage's file; a stage's record includes the records of the stages it starts from.
        made = {
            "model": identity(model),
            "data": identity(data),
            "imgsz": imgsz,
            "batch": batch,
            "nbs": nbs,
            "seed": seed,
            "ema_span": EMA_SPAN,
        }
        if pretrain_epochs:
            made = {**made, "pretrain_epochs": pretrain_epochs}
        plan = {"pretrained.pt": made} if pretrain_epochs else {}
        continued = {"warmup_epochs": 0, "close_mosaic": 0}
        total = sparse_epochs + finetune_epochs
        plan["baseline.pt"] = {
            **made,
            "sparse_epochs": sparse_epochs,
            "finetune_epochs": finetune_epochs,
            **continued,
            "close_mosaic": CLOSING,
        }
        plan["sparse.pt"] = {**made, "sparse_epochs": sparse_epochs, **settings, "sparse_lr0": SPARSE_LR0, **continued}
        for level in levels:
            pruned = {**plan["sparse.pt"], "level": level, "round_to": round_to}
            plan[f"prune-{level:g}/slim.pt"] = pruned
            plan[f"slim-{level:g}-ft.pt"] = {
                **pruned,
                "finetune_epochs": finetune_epochs,
                **FINETUNE_OPTIMIZER,
                "close_mosaic": CLOSING,
            }
        for record in plan.values() if repository else []:  # what its train.py does instead, on the record
            record.update({k: v for k, v in FIXED.items() if k in record})
        records = Records(run / "stages.json")
        records.check(plan, run)

        metrics = Metrics(run / "metrics.json")
        rows = []
        start = Path(model)
        if pretrain_epochs:
            records.start("pretrained.pt", plan)
            start = stage(
                run / "pretrained.pt",
                f"pretrain {model}: {pretrain_epochs} epochs",
                lambda: resumable(train, run, "pretrain", model, data, epochs=pretrain_epochs, **common),
            )
            rows.append(measured_row(metrics, "pretrained", start, data, imgsz, batch, level=0.0, export=False))
        records.start("baseline.pt", plan)
        baseline = stage(
            run / "baseline.pt",
            f"baseline: {total} more epochs of plain training",
            lambda: resumable(train, run, "baseline", start, data, epochs=total, **closed(total)),
        )
        records.start("sparse.pt", plan)
        sparse_pt = stage(
            run / "sparse.pt",
            f"sparse training: {sparse_epochs} epochs",
            lambda: resumable(sparse, run, "sparse", start, data, epochs=sparse_epochs, **settings, **after_pretrain),
        )
        rows += [
            measured_row(metrics, "baseline", baseline, data, imgsz, batch, level=0.0, export=export),
            measured_row(metrics, "sparse", sparse_pt, data, imgsz, batch, level=0.0, export=False),
        ]
        if pretrain_epochs:
            start_val = rows[0]
        else:  # a key of its own: a user's start model may be named like a stage (baseline.pt, sparse.pt)
            start_val = metrics.get("start/val", lambda: accuracy(start, data, imgsz, batch))
        warn_if_still_learning(start_val, rows[-2], total)
        zeroed = metrics.get("sparse/zeroed", lambda: zeroed_share_of(load_model(sparse_pt)))
        rows[-1]["zeroed"] = zeroed
        baseline_images = functools.cache(lambda: per_image(baseline, data, imgsz, batch))  # once, for every level
        for level in levels:
            tag = f"{level:g}"
            slim = run / f"prune-{tag}" / "slim.pt"  # prune() writes slim.pt last, atomically
            records.start(f"prune-{tag}/slim.pt", plan)
            if slim.exists():
                LOGGER.info(f"[skip] prune {tag}: {slim} exists")
            else:
                banner(f"prune {tag} of the prunable channels")
                prune(sparse_pt, ratio=level, round_to=round_to, project=run, name=f"prune-{tag}", exist_ok=True)
            rows.append(measured_row(metrics, "pruned", slim, data, imgsz, batch, level=level, export=False))
            beyond = level_past_zeros(slim.parent / "plan.json", level, zeroed, settings["sr_share"])
            rows[-1]["past_zeros"] = beyond
            records.start(f"slim-{tag}-ft.pt", plan)
            ft = stage(
                run / f"slim-{tag}-ft.pt",
                f"finetune the {tag} slim model: {finetune_epochs} epochs",
                lambda tag=tag, slim=slim: resumable(
                    finetune, run, f"finetune-{tag}", slim, data, epochs=finetune_epochs, **closed(finetune_epochs)
                ),
            )
            rows.append(measured_row(metrics, "finetuned", ft, data, imgsz, batch, level=level, export=export))
            paired = metrics.get(
                f"{ft.stem}/paired",
                lambda ft=ft: paired_difference(baseline_images(), per_image(ft, data, imgsz, batch)),
            )
            rows[-1].update(paired, past_zeros=beyond, holds=holds(paired))

        banner("report")
        from .report import pipeline_report  # deferred: report loads matplotlib, only needed when a plot is drawn

        table = pipeline_report(rows, run, task)
        LOGGER.info(table.to_markdown(index=False, floatfmt=".4g"))
        LOGGER.info(
            f"\nrun folder: {run.resolve()}\n  report: {run / 'report.md'}, {run / 'report.csv'}, {run / 'report.png'}"
        )
        return run


def level_past_zeros(plan_json: Path, level: float, zeroed: float, sr_share: float) -> bool:
    """Whether the prune at this level removed channels sparse training did not zero; one warning line if so."""
    settings = Plan.load(plan_json).settings
    beyond = past_zeros(settings["removed_importance_max"], settings["kept_importance_median"])
    if beyond:
        LOGGER.warning(
            f"warning: level {level:g} prunes past what sparse training zeroed ({zeroed:.1%} of the "
            f"prunable channels): it removes channels up to |gamma| {settings['removed_importance_max']:.3g}; its rows "
            f"are marked past_zeros in the report. To prune there from zeros, "
            + (
                "sparse-train longer (more sparse_epochs=)"
                if level <= sr_share
                else f"sparse-train to it (sr_share={level:g})"
            )
        )
    return beyond


def warn_if_still_learning(start: dict, baseline: dict, epochs: int, tolerance: float = 0.01) -> None:
    """The baseline is the start model trained `epochs` more: if that gained much, the start was still learning, and
    a finetuned model falls short of the baseline for the training it missed as much as for what pruning took."""
    gain = baseline["mAP50-95"] - start["mAP50-95"]
    if gain > tolerance:
        LOGGER.warning(
            f"warning: the baseline gained {gain:.3f} mAP50-95 over the start model in {epochs} more epochs: it was "
            "still learning, so the finetuned models miss the baseline's extra training as well as what pruning took; "
            "prune a model trained until its mAP stops rising (more pretrain_epochs, or a converged .pt)"
        )


def identity(source) -> str:
    """A model or dataset as a stage record names it: a stock yaml by name, a file by its content."""
    path = Path(str(source))
    if not path.is_file():
        return str(source)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"{path.resolve()} (sha256 {digest})"


class Records:
    """stages.json: {stage file: the settings that made it}, written when the stage starts."""

    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {}

    def check(self, plan: dict, run: Path) -> None:
        for stage_file, wanted in plan.items():
            had = self.data.get(stage_file)
            if had is None:
                if (run / stage_file).exists():
                    raise YoloslimError(
                        f"{run / stage_file} exists but {self.path.name} does not say what made it; "
                        "give another name= for a new run"
                    )
                continue
            for key in sorted(set(had) | set(wanted)):
                if had.get(key) != wanted.get(key):
                    raise YoloslimError(
                        f"{run} was started with {key}={had.get(key)}, not {key}={wanted.get(key)} (its {stage_file}); "
                        f"rerun with {key}={had.get(key)} to resume it, or give another name= for a new run"
                    )

    def start(self, stage_file: str, plan: dict) -> None:
        if stage_file not in self.data:
            self.data[stage_file] = plan[stage_file]
            atomic_write_text(self.path, json.dumps(self.data, indent=1))


def resumable(train_fn, run: Path, name: str, model, data, **kwargs) -> Path:
    """Start a training stage, or resume it from its last.pt when an earlier pipeline was interrupted."""

    weights = run / "train" / name / "weights"
    if (weights / "last.pt").exists():
        ckpt = torch.load(weights / "last.pt", map_location="cpu", weights_only=False)
        if ckpt.get("epoch", -1) == -1 and (weights / "best.pt").exists():
            return weights / "best.pt"  # it had finished; only the copy to the stage file was missing
        LOGGER.info(f"resuming {name} from {weights / 'last.pt'} (epoch {ckpt['epoch'] + 1})")
        return train_fn(weights / "last.pt", data, name=name, resume=str(weights / "last.pt"), **kwargs)
    return train_fn(model, data, name=name, **kwargs)


def measured_row(
    metrics: Metrics, stage_name: str, weights: Path, data, imgsz: int, batch: int, level: float, export: bool
) -> dict:
    """One report row: size, accuracy and (export=True) the checked ONNX export's latency of a stage's weights,
    each measured once and kept in metrics.json."""
    key = weights.stem if weights.name != "slim.pt" else f"{weights.parent.name}-slim"
    out = {"stage": stage_name, "level": level, "weights": str(weights)}
    out.update(metrics.get(f"{key}/size", lambda: size_stats(weights)))
    out.update(metrics.get(f"{key}/val", lambda: accuracy(weights, data, imgsz, batch)))
    if export:
        out.update(metrics.get(f"{key}/onnx", lambda: onnx_stats(weights, imgsz)))
    return out


def onnx_stats(weights: Path, imgsz: int) -> dict:
    onnx, report = export_with_report(weights, imgsz=imgsz, runs=50, threads=1, verbose=True)
    return {
        "onnx": str(onnx),
        "onnx_mb": Path(onnx).stat().st_size / 2**20,
        "latency_ms": report["latency"]["median_ms"],
        "onnx_max_diff": max(report["max_diff"].values()),
    }
