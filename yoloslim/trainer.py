"""Ultralytics trainer subclasses and the train/sparse/finetune verbs.

SlimTrainer trains a checkpoint's module at its own (slim) width; SparseTrainer adds the gradient of
sr * penalty (yoloslim/sparsity.py) on the prunable BN gammas to the loss's, just before the stock optimizer
step. Why it is done this way, and what was measured: docs/sparsity.md ("How the penalty joins training").
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
import shutil
import traceback
from pathlib import Path

import torch
import ultralytics
from ultralytics.cfg import get_cfg, get_save_dir
from ultralytics.engine.model import Model
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.models.yolo.obb import OBBTrainer
from ultralytics.models.yolo.pose import PoseTrainer
from ultralytics.models.yolo.segment import SegmentationTrainer
from ultralytics.nn.tasks import guess_model_task, yaml_model_load
from ultralytics.utils import DEFAULT_CFG, RANK

from . import classic
from .args import RULES, verb
from .checkpoint import MODEL_TASKS, check_stride, load_checkpoint, load_model, task_of
from .data import check
from .errors import YoloslimError
from .io import atomic_write, writable_dir
from .log import LOGGER
from .sparse_run import SparsityRun
from .sparsity import PENALTIES, SCHEDULES  # noqa: F401 (the API's names for the choices)

# The weakest 42% of the channels (wide groups first) pushed for the first 60% of the epochs, with sr calibrated
# so they reach zero by then (sr=None: auto), then sr/100 so the network recovers around the surviving channels
# (docs/sparsity.md).
SPARSE_DEFAULTS = {"sr": None, "sr_schedule": "step", "sr_step": 0.6, "penalty": "wide", "sr_share": 0.42}
# optimizer=auto: SGD at a fifth of Ultralytics' from-scratch lr0, because sparse training continues a trained
# model without warm-up; at 0.01, plain SGD alone cost yolov8n 0.015 mAP50-95 on the tree data (docs/sparsity.md).
SPARSE_LR0 = 0.002
# finetune, unless optimizer= is given: Ultralytics' own choice, as the baseline gets. Once the EMA averages
# (below), 20 finetune epochs at auto's AdamW 0.002 beat the gentler 0.0005 that 4-epoch finetunes needed
# (yolov5nu from COCO, pruned at 0.3: 0.171 against 0.143, baseline 0.152), docs/sparsity.md.
FINETUNE_OPTIMIZER = {"optimizer": "auto"}
# Ultralytics' ModelEMA: decay EMA_DECAY * (1 - exp(-steps / EMA_TAU)); yoloslim's trainers shorten the time
# constant to EMA_SPAN of the run's steps (SlimMixin.fit_ema_to_run).
EMA_DECAY, EMA_TAU, EMA_SPAN = 0.9999, 2000.0, 0.25
ULTRALYTICS_DIR = Path(ultralytics.__file__).resolve().parent


def check_sparse_settings(settings: dict) -> dict:
    """Sparse training's settings over its defaults, each checked by the rule every verb uses (yoloslim/args.py)."""
    merged = {**SPARSE_DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    return {k: RULES[k](k, v) if k in RULES else v for k, v in merged.items()}


class SlimMixin:
    """Trains the model in a .pt checkpoint as it is, at its own (slim) width, in any task's stock trainer.

    The stock trainer rebuilds a .pt's model from its yaml at full width and copies what fits, which
    silently undoes a prune. Here the checkpoint's module itself is trained; on a dataset with other
    classes only the head's class outputs are rebuilt (see fit_classes). DDP workers and resume=True
    load it from the .pt path in args, so they get the slim module too. A model .yaml trains as stock."""

    task, kind = "detect", "slim"

    def __init__(self, cfg=DEFAULT_CFG, overrides=None, _callbacks=None):
        # Every check that can be made from the arguments is made before Ultralytics creates the run folder; what a
        # run refused later (or interrupted) created is removed again, unless it saved a last.pt to resume from.
        self.created: list[Path] = []
        with ultralytics_errors():
            args = get_cfg(cfg, overrides)
            if args.resume:
                check_resumable(args.resume)
            else:
                given = source_task(args.model)  # the task trainers force args.task: the model's own decides
                if given and given != self.task:
                    raise YoloslimError(wrong_task(type(self).__name__, self.task, given))
                if RANK in {-1, 0}:
                    self.created = new_run_folders(args)
            try:
                super().__init__(cfg, overrides, _callbacks)
            except BaseException:
                self.remove_refused_run()
                raise
        if self.created and Path(self.save_dir) != self.created[0]:
            self.created = []  # not the folder planned (another run took that name meanwhile): not ours to remove
        if self.args.task != self.task:  # the wrong task's trainer would train the wrong loss, silently
            self.refuse(wrong_task(type(self).__name__, self.task, self.args.task))

    def refuse(self, message: str):
        self.remove_refused_run()
        raise YoloslimError(message)

    def remove_refused_run(self) -> None:
        """Remove the run folder (and the parents) this run created, when it holds nothing to resume from."""
        if not self.created or (self.created[0] / "weights" / "last.pt").exists():
            return
        shutil.rmtree(self.created[0], ignore_errors=True)
        for folder in self.created[1:]:  # deepest first; rmdir leaves a folder someone else has filled meanwhile
            with contextlib.suppress(OSError):
                folder.rmdir()
        self.created = []

    def train(self):
        try:
            with ultralytics_errors():
                return super().train()
        except BaseException as e:  # a refusal, Ultralytics' own error, Ctrl-C: nothing half-made is left behind
            self.remove_refused_run()
            if isinstance(e, KeyboardInterrupt) and self.last.exists():
                LOGGER.warning(f"interrupted: continue with resume=True model={self.last}")
            raise

    def _setup_train(self):
        super()._setup_train()
        self.fit_ema_to_run()

    def _load_checkpoint_state(self, ckpt):
        super()._load_checkpoint_state(ckpt)  # resume and NaN recovery build a fresh ModelEMA
        self.fit_ema_to_run()

    def fit_ema_to_run(self) -> None:
        """Ultralytics' EMA ramps its decay up with a time constant of 2000 optimizer steps, so in a run shorter
        than that it barely averages: 20 epochs of 94 images (240 steps) end at decay 0.11, and the saved model
        is whatever the last step left. The time constant is a quarter of the run's steps instead (capped at
        Ultralytics' 2000), so the saved weights average about the run's last fifth (docs/sparsity.md)."""
        if not self.ema or not getattr(self, "train_loader", None):
            return
        steps = self.epochs * math.ceil(len(self.train_loader) / max(round(self.args.nbs / self.batch_size), 1))
        tau = min(EMA_TAU, max(EMA_SPAN * steps, 1.0))
        self.ema.decay = lambda updates: EMA_DECAY * (1 - math.exp(-updates / tau))

    def setup_model(self):
        if isinstance(self.model, torch.nn.Module) or not str(self.model).lower().endswith(".pt"):
            return super().setup_model()

        ckpt = load_checkpoint(self.model)  # also a model pickled without Ultralytics' dict around it
        weights = load_model(self.model)
        self.model = self.get_model(cfg=weights.yaml, weights=weights, verbose=RANK == -1)
        return ckpt

    def get_model(self, cfg=None, weights=None, verbose=True):
        if not isinstance(weights, torch.nn.Module):
            given = cfg and guess_model_task(yaml_model_load(cfg) if isinstance(cfg, (str, Path)) else cfg)
            if given and given != self.task:
                self.refuse(wrong_task(type(self).__name__, self.task, given))
            return self.checked_size(super().get_model(cfg, weights, verbose))
        if MODEL_TASKS.get(type(weights)) != self.task:
            self.refuse(wrong_task(type(self).__name__, self.task, MODEL_TASKS.get(type(weights))))
        head = weights.model[-1]
        if hasattr(head, "kpt_shape") and list(head.kpt_shape) != list(self.data.get("kpt_shape") or head.kpt_shape):
            self.refuse(
                f"the model's keypoints are kpt_shape {list(head.kpt_shape)}, the data's {self.data['kpt_shape']}; "
                "a pruned pose model keeps its keypoint layout: train it on data with the same kpt_shape"
            )
        self.checked_size(weights)
        fit_classes(weights, self.data["names"])
        # A checkpoint is saved with requires_grad=False (Ultralytics' strip_optimizer); the stock trainer would turn
        # each one back on with a warning line apiece (hundreds per run); freeze= still freezes as stock.
        for param in weights.parameters():
            if param.dtype.is_floating_point:
                param.requires_grad_(True)
        return weights

    def checked_size(self, model):
        """imgsz must be a multiple of the model's stride, the rule of every verb (Ultralytics would round it up)."""
        try:
            for size in self.args.imgsz if isinstance(self.args.imgsz, (list, tuple)) else [self.args.imgsz]:
                check_stride(model, int(size))
        except YoloslimError as e:
            self.refuse(str(e))
        return model


def wrong_task(trainer: str, task: str, given: str | None) -> str:
    right = TRAINERS.get(given, {}).get("sparse" if trainer.startswith("Sparse") else "slim")
    what = f"{'an' if given == 'obb' else 'a'} {given} model" if given else "not a detect, segment, pose or obb model"
    fix = f"use yoloslim.{right.__name__}" if right else "yoloslim trains detect, segment, pose and obb models"
    return f"{trainer} trains {task} models; this is {what}: {fix}"


def source_task(source) -> str | None:
    """The task of the model file a trainer is given (None: not a file read here, e.g. an in-memory model's name)."""
    path = str(source)
    if path.endswith((".yaml", ".yml")):
        with contextlib.suppress(Exception):  # not a model yaml: Ultralytics says so where it reads it
            return guess_model_task(yaml_model_load(path))
    if path.endswith(".pt") and Path(path).is_file():
        return MODEL_TASKS.get(type(load_model(path)))
    return None


def new_run_folders(args) -> list[Path]:
    """The run folder Ultralytics is about to create and its missing parents (deepest first); refused when it holds
    the training's own input (exist_ok=True would overwrite it, as weights/best.pt over a best.pt given as model=)."""
    planned = get_save_dir(args)
    for key in ("model", "pretrained"):
        value = getattr(args, key, None)
        if isinstance(value, (str, Path)) and Path(value).is_file() and Path(value).resolve().is_relative_to(planned):
            raise YoloslimError(
                f"{key}={value} is inside {planned}, the run folder this training writes (its weights/, args.yaml "
                "...): it could be overwritten; choose another name= or project=, or copy the input elsewhere"
            )
    return [p for p in [planned, *planned.parents] if not p.exists()]


def check_resumable(resume) -> None:
    """resume= of a run that finished (its optimizer stripped) or of a file that is not a run's last.pt: one line
    here, before Ultralytics rewrites that run's args.yaml."""
    if not isinstance(resume, (str, Path)):
        return  # resume=True: Ultralytics finds the run (the verbs make it model=), or says it cannot
    if not Path(resume).is_file():
        raise YoloslimError(f"resume={resume} does not exist; give the interrupted run's weights/last.pt")
    ckpt = load_checkpoint(resume)
    if ckpt.get("epoch", -1) == -1 or ckpt.get("optimizer") is None:
        raise YoloslimError(
            f"resume={resume} is a finished run (or not a run's last.pt): nothing to resume; "
            f"start a new training from it with model={resume} (without resume=)"
        )


@contextlib.contextmanager
def ultralytics_errors():
    """An error Ultralytics raises itself (its checks: optimizer=Foo, freeze=, resume=, a cfg value) becomes one
    line; an error raised inside torch or elsewhere stays a traceback (a bug to report). verbose=True shows it."""
    try:
        yield
    except (AssertionError, FileNotFoundError, NotImplementedError, RuntimeError, TypeError, ValueError) as e:
        if isinstance(e, YoloslimError) or not e.__traceback__:
            raise
        frames = traceback.extract_tb(e.__traceback__)
        if not Path(frames[-1].filename).resolve().is_relative_to(ULTRALYTICS_DIR):
            raise
        text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(e)).split())  # one line, without terminal colours
        raise YoloslimError(f"Ultralytics refused it: {text or type(e).__name__}") from e


def fit_classes(model: torch.nn.Module, names: dict) -> None:
    """Give the Detect head one class output per name of the data, as Ultralytics does for a new dataset: the last
    1x1 conv of each class branch is rebuilt with the rows of the classes it already had moved to their new index,
    by name, and fresh rows for new names; every other layer keeps its width and weights. A count kept but other
    names or order is mapped too (by index the outputs would change meaning); names the model never had (Ultralytics'
    placeholders 0, 1, ...) stay as they are when the count fits."""
    head = model.model[-1]
    new = {int(k): str(v) for k, v in dict(names).items()}
    old = {int(k): str(v) for k, v in dict(getattr(model, "names", None) or {}).items()}
    placeholders = all(v == str(k) for k, v in old.items())
    if head.nc == len(new) and (placeholders or old == new):
        return
    nc, index = len(new), {name: i for i, name in sorted(old.items(), reverse=True)}  # a name's first index
    branches = [head.cv3] + ([head.one2one_cv3] if getattr(head, "one2one_cv3", None) is not None else [])
    for branch in branches:
        for level, seq in enumerate(branch):
            last = seq[-1]
            conv = torch.nn.Conv2d(last.in_channels, nc, 1).to(last.weight.device)
            with torch.no_grad():
                conv.bias.fill_(math.log(5 / nc / (640 / float(head.stride[level])) ** 2))  # Detect.bias_init
                for new_id, name in new.items():
                    if index.get(name, last.out_channels) < last.out_channels:
                        conv.weight[new_id] = last.weight[index[name]]
                        conv.bias[new_id] = last.bias[index[name]]
            seq[-1] = conv
    LOGGER.info(f"yoloslim: {class_mapping(old, new, head.nc)}; every other layer keeps its width and weights")
    head.nc, head.no = nc, nc + head.reg_max * 4
    model.nc, model.names = nc, dict(names)
    if isinstance(getattr(model, "yaml", None), dict):
        model.yaml["nc"] = nc


def class_mapping(old: dict, new: dict, rows: int) -> str:
    """What fit_classes did, in one line: the classes kept (and moved), started fresh and dropped, by name."""
    index = {name: i for i, name in sorted(old.items(), reverse=True)}
    kept = [name for name in new.values() if index.get(name, rows) < rows]
    moved = [f"{name} {index[name]}->{i}" for i, name in new.items() if name in kept and index[name] != i]
    fresh = [name for name in new.values() if name not in kept]
    dropped = [name for i, name in old.items() if name not in new.values() and i < rows]
    short = lambda items: ", ".join(items[:8]) + (f" and {len(items) - 8} more" if len(items) > 8 else "")  # noqa: E731
    parts = [f"{len(kept)} kept" + (f" (moved: {short(moved)})" if moved else "")]
    parts += [f"{len(fresh)} new, trained from scratch: {short(fresh)}"] if fresh else []
    parts += [f"{len(dropped)} dropped: {short(dropped)}"] if dropped else []
    return f"the head's {rows} class outputs mapped by name to the data's {len(new)} classes: " + "; ".join(parts)


class SparseMixin(SlimMixin, SparsityRun):
    """SlimMixin + a penalty on prunable BN gammas (its gradient joins the loss's), sparsity in results.csv.
    A pruned checkpoint is sparse-trained at its slim width (iterative slimming)."""

    kind = "sparse"
    settings: dict = {}  # set by SparseTrainer.using(); overrides (the CLI's, DDP workers') win over them

    @classmethod
    def using(cls, **settings) -> type:
        """This trainer with sparse settings (sr=, sr_schedule=, sr_step=, penalty=, sr_share=) built in, for
        stock training, whose cfg check refuses unknown keys such as sr=:
        YOLO("model.pt").train(data=..., trainer=SparseTrainer.using(sr=1.0, penalty="wide")).
        The settings are stored in the run's args, so resume and DDP workers (which rebuild the trainer as
        SparseTrainer from those args) keep them."""
        unknown = sorted(set(settings) - set(SPARSE_DEFAULTS))
        if unknown:
            raise YoloslimError(f"SparseTrainer.using() takes {', '.join(SPARSE_DEFAULTS)}, not {', '.join(unknown)}")
        settings = {**cls.settings, **settings}  # .using(sr=1).using(penalty="l1") keeps sr=1
        checked = check_sparse_settings(settings)
        # named as this class: the DDP launch file (cloudpickle) carries it with its settings
        return type(
            cls.__name__,
            (cls,),
            {
                "settings": {k: checked[k] for k in settings},
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
            },
        )

    def __init__(self, cfg=DEFAULT_CFG, overrides=None, _callbacks=None):
        overrides = dict(overrides or {})
        given = {k: overrides.pop(k) for k in list(overrides) if k in SPARSE_DEFAULTS}
        super().__init__(cfg, overrides, _callbacks)
        # On resume Ultralytics replaced self.args with the checkpoint's args, which hold the original
        # settings: those win, so the schedule continues unchanged.
        stored = {k: getattr(self.args, k) for k in SPARSE_DEFAULTS if hasattr(self.args, k)}
        for k, v in check_sparse_settings({**self.settings, **given, **stored}).items():
            setattr(self.args, k, v)
        self.gammas: list[tuple[str, torch.Tensor]] = []
        self.penalty_seconds = 0.0
        self.add_callback("on_train_end", lambda trainer: trainer.finish_sparsity())
        self.add_callback("on_train_epoch_start", lambda trainer: trainer.say_if_pushing_on())
        self.reached, self.said_pushing_on = False, False

    def _setup_train(self):
        super()._setup_train()
        steps_per_epoch = max(1, math.ceil(len(self.train_loader) / self.accumulate))
        self.setup_sparsity(steps_per_epoch)

    def get_validator(self):
        # The validator re-checks args against Ultralytics' own keys: hand it args without ours.
        ours = {k: vars(self.args).pop(k) for k in SPARSE_DEFAULTS if k in vars(self.args)}
        try:
            return super().get_validator()
        finally:
            vars(self.args).update(ours)

    def build_optimizer(self, model, name="auto", lr=0.001, momentum=0.9, decay=1e-5, iterations=1e5):
        if name == "auto":  # sparsity needs plain gradient steps (docs/sparsity.md, "Optimizers")
            LOGGER.info(f"sparse: optimizer=auto is SGD at lr0={SPARSE_LR0} (lr0= applies with optimizer=SGD)")
            name, lr = "SGD", SPARSE_LR0
        return super().build_optimizer(model, name, lr, momentum, decay, iterations)

    def save_metrics(self, metrics):
        sparsity = self.sparsity_metrics()
        if sparsity:
            # Last epoch's sparsity/* ride in self.metrics when the epoch was not validated (val=False); dropped and
            # appended again so every row of results.csv has its header's column order
            metrics = {**{k: v for k, v in metrics.items() if not k.startswith("sparsity/")}, **sparsity}
            # Ultralytics' integrations (TensorBoard, MLflow, W&B, ...) log trainer.metrics after this call
            self.metrics = {**(self.metrics or {}), **sparsity}
        super().save_metrics(metrics)


STOCK_TRAINERS = {"detect": DetectionTrainer, "segment": SegmentationTrainer, "pose": PoseTrainer, "obb": OBBTrainer}


def task_trainer(mixin: type, task: str, name: str) -> type:
    """The stock trainer of a task with a mixin: one class per (mixin, task), importable by name (DDP needs that)."""
    stock = STOCK_TRAINERS[task]
    doc = f"A {stock.__name__} that {'sparse-trains' if mixin is SparseMixin else 'trains'} a model at its own width"
    attrs = {"task": task, "__module__": __name__, "__qualname__": name, "__doc__": f"{doc} ({mixin.__name__})."}
    return type(name, (mixin, stock), attrs)


SlimTrainer = task_trainer(SlimMixin, "detect", "SlimTrainer")
SlimSegmentationTrainer = task_trainer(SlimMixin, "segment", "SlimSegmentationTrainer")
SlimPoseTrainer = task_trainer(SlimMixin, "pose", "SlimPoseTrainer")
SlimOBBTrainer = task_trainer(SlimMixin, "obb", "SlimOBBTrainer")
SparseTrainer = task_trainer(SparseMixin, "detect", "SparseTrainer")
SparseSegmentationTrainer = task_trainer(SparseMixin, "segment", "SparseSegmentationTrainer")
SparsePoseTrainer = task_trainer(SparseMixin, "pose", "SparsePoseTrainer")
SparseOBBTrainer = task_trainer(SparseMixin, "obb", "SparseOBBTrainer")
TRAINERS = {
    "detect": {"slim": SlimTrainer, "sparse": SparseTrainer},
    "segment": {"slim": SlimSegmentationTrainer, "sparse": SparseSegmentationTrainer},
    "pose": {"slim": SlimPoseTrainer, "sparse": SparsePoseTrainer},
    "obb": {"slim": SlimOBBTrainer, "sparse": SparseOBBTrainer},
}


def _run(kind: str, model, data, **kwargs) -> Path:
    """Train with a trainer class built from overrides (as DDP workers are); returns best.pt.

    model: a .pt or yaml path, a YOLO object or a DetectionModel; an object is trained as a copy (the caller's
    stays as it was), in this process (DDP needs a path, as in stock Ultralytics)."""

    if not str(data).endswith((".yaml", ".yml")):
        raise YoloslimError(f"data={data} must be a YOLO data.yaml")
    module = load_model(model)  # one clear line for a missing, corrupt or unsupported model, before any work
    task = task_of(module)
    check(data, task=task)
    if "imgsz" in kwargs:
        check_stride(module, kwargs["imgsz"])
    freeze, layers = kwargs.get("freeze"), len(module.model)
    if isinstance(freeze, int) and freeze >= layers:
        raise YoloslimError(
            f"freeze={freeze} freezes all {layers} layers of the model, leaving nothing to train; "
            f"give freeze=<{layers} (the first layers) or a list of layer indices"
        )
    outside = [i for i in freeze if isinstance(i, int) and i >= layers] if isinstance(freeze, list) else []
    if outside:
        raise YoloslimError(f"freeze= names layer {outside[0]}; the model has layers 0 to {layers - 1}")
    if kwargs.get("resume") is True:  # Ultralytics would resume its latest run anywhere: resume model= instead
        if not str(model).endswith(".pt") or isinstance(model, (torch.nn.Module, Model)):
            raise YoloslimError("resume=True resumes model=, a run's weights/last.pt; give its path as model=")
        kwargs["resume"] = str(model)
    in_memory = isinstance(model, (torch.nn.Module, Model))
    if isinstance(model, Model):
        name = model.ckpt_path or model.model_name
    elif in_memory:
        name = (getattr(model, "yaml", None) or {}).get("yaml_file", "model.yaml")
    else:
        name = str(model)
    overrides = {"model": str(name), "data": str(data), "project": "runs/yoloslim", "exist_ok": False, **kwargs}
    overrides["task"] = task
    # Ultralytics puts a relative project under its own settings' runs_dir/<task>, not under the working folder
    project = Path(overrides["project"]).resolve()
    overrides["project"] = str(project)
    missing = [p for p in [project, *project.parents] if not p.exists()]
    writable_dir(project)
    if classic.is_classic(module):  # the yolov5 repository's model: its own train.py, hooked
        from .classic_train import train as train_classic

        settings = {k: v for k, v in overrides.items() if k not in ("model", "data", "task")}
        try:
            return train_classic(kind, module, model, data, **settings)
        except BaseException:
            for folder in missing:
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
    try:
        trainer = TRAINERS[task][kind](overrides=overrides)
        if in_memory:  # as stock Model.train() does; setup_model() then keeps it
            trainer.model = trainer.get_model(cfg=module.yaml, weights=copy.deepcopy(module))
        trainer.train()
    except BaseException:  # the trainer removed the run folder it made; the project folder made here goes too
        for folder in missing:  # deepest first; rmdir leaves one that holds anything
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    best = Path(trainer.best if Path(trainer.best).exists() else trainer.last)
    LOGGER.info(f"weights: {best}\nrun folder: {trainer.save_dir}")
    return best


@verb("train", trains=True)
def train(model="yolov8n.yaml", data: str | Path = "datasets/tea-synth/data.yaml", **kwargs) -> Path:
    """Plain Ultralytics training: the unpruned baseline, or more epochs of a .pt at its own (slim) width.

    Any Ultralytics train argument can be added (epochs=, imgsz=, batch=, device=, lr0=, ...)."""
    return _run("slim", model, data, **{"name": "train", **kwargs})


@verb("sparse", trains=True)
def sparse(
    model="yolov8n.yaml",
    data: str | Path = "datasets/tea-synth/data.yaml",
    sr: float | None = SPARSE_DEFAULTS["sr"],
    sr_schedule: str = SPARSE_DEFAULTS["sr_schedule"],
    sr_step: float = SPARSE_DEFAULTS["sr_step"],
    penalty: str = SPARSE_DEFAULTS["penalty"],
    sr_share: float = SPARSE_DEFAULTS["sr_share"],
    **kwargs,
) -> Path:
    """Sparse training: Ultralytics training plus a penalty that pushes unimportant BN gammas to zero.

    sr: the penalty's weight per nominal batch, or auto (default: calibrated every step so the pushed channels
    reach zero by sr_step, docs/sparsity.md); sr_schedule/sr_step: how it falls over the epochs; penalty:
    wide (default), lowest or l1; sr_share: the share of the prunable channels to push to zero. A pruned .pt is
    trained at its slim width. The run folder also gets sparse.pt (a copy of best.pt) and gammas.png."""
    settings = check_sparse_settings(
        {"sr": sr, "sr_schedule": sr_schedule, "sr_step": sr_step, "penalty": penalty, "sr_share": sr_share}
    )
    best = _run("sparse", model, data, **settings, **{"name": "sparse", **kwargs})

    return atomic_write(best.parent.parent / "sparse.pt", lambda tmp: shutil.copyfile(best, tmp))


@verb("finetune", trains=True)
def finetune(model="slim.pt", data: str | Path = "datasets/tea-synth/data.yaml", **kwargs) -> Path:
    """Finetune a pruned checkpoint at its slim width; best.pt/last.pt keep exactly its parameter count.

    On a dataset with other classes the head's class outputs are rebuilt for them (every other layer is kept).
    Without optimizer=, it is Ultralytics' optimizer=auto, as plain training (the baseline) gets (docs/sparsity.md)."""
    if isinstance(model, (str, Path)) and not str(model).endswith(".pt"):
        raise YoloslimError(f"model={model} must be a pruned .pt checkpoint (made by 'yoloslim prune')")
    if "optimizer" not in kwargs:
        kwargs = {**FINETUNE_OPTIMIZER, **kwargs}
    return _run("slim", model, data, **{"name": "finetune", **kwargs})
