"""Classic YOLOv5 training: the yolov5 repository's own train.py (its loss, hyperparameters, augmentation,
AutoAnchor, EMA and val), hooked so that it trains the module it is given, at that module's own (slim) width, with
the sparsity penalty of yoloslim's Ultralytics trainers when asked (sparse_run.SparsityRun).

The repository's train.py rebuilds the model from its yaml at full width and copies the weights whose shapes fit,
which silently undoes a prune; here the `Model` it calls returns the given module itself. The other hooks: its
smart_optimizer (the penalty's step hooks, and at warmup_epochs=0 the schedule's lr on every step: ClassicRun.
skip_warm_up), lr_scheduler.LambdaLR (that schedule), ModelEMA (its time constant fitted to the run, as in
trainer.py), create_dataloader (the loader's length; nbs=batch) and check_requirements (which would pip-install).
Nothing of its code is copied; the hooks were written against classic.TESTED.
"""

from __future__ import annotations

import contextlib
import copy
import math
import shutil
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import yaml
from ultralytics.data.utils import check_det_dataset

from . import classic
from .errors import YoloslimError
from .log import LOGGER
from .sparse_run import SparsityRun
from .trainer import EMA_DECAY, EMA_SPAN, EMA_TAU, SPARSE_LR0, class_mapping

NBS = 64  # the repository's nominal batch, a literal in its train.py
# Ultralytics' argument name -> train.py's option of the same meaning
OPTIONS = {
    "epochs": "epochs",
    "batch": "batch_size",
    "imgsz": "imgsz",
    "device": "device",
    "workers": "workers",
    "project": "project",
    "name": "name",
    "exist_ok": "exist_ok",
    "seed": "seed",
    "optimizer": "optimizer",
    "cos_lr": "cos_lr",
    "patience": "patience",
    "freeze": "freeze",
    "cache": "cache",
    "rect": "rect",
    "single_cls": "single_cls",
    "save_period": "save_period",
    "resume": "resume",
}
NEGATED = {"plots": "noplots"}  # train.py's flag says the opposite
# Ultralytics arguments train.py has no way to honour at anything but this value (its code fixes them; val=False:
# its noval path fails in 7.0.14, on an unset map50s)
FIXED = {"close_mosaic": 0, "amp": True, "verbose": True, "val": True}
OPTIMIZERS = ("SGD", "Adam", "AdamW")
HOOKED = ("Model", "smart_optimizer", "ModelEMA", "create_dataloader", "check_requirements", "lr_scheduler")


class ClassicRun(SparsityRun):
    """The state of one train.py run that the hooks see: the model, its optimizer and EMA, the epoch; with sparse
    settings (args.sr ...) the penalty joins its optimizer steps."""

    def __init__(self, module, epochs: int, start_epoch: int, warmup_epochs: float, sparse: dict | None, save_dir):
        self.module, self.epochs, self.start_epoch, self.epoch = module, epochs, start_epoch, start_epoch
        self.warmup_epochs = warmup_epochs
        self.sparse, self.save_dir = sparse, save_dir
        self.args = SimpleNamespace(**(sparse or {}), nbs=NBS)
        self.loader_batch: int | None = None  # nbs= honoured (see train): the images a batch, train.py told 64
        self.told_batch = 16  # the batch size train.py is given, from which it derives its accumulation
        self.model = self.optimizer = self.ema = self.loader = self.scheduler = None
        self.warm_up = warmup_epochs > 0  # warmup_epochs=0: none at all, as Ultralytics means it (skip_warm_up)
        self.gammas, self.penalty_seconds, self.batches_since_step = [], 0.0, 0
        self.reached, self.said_pushing_on = False, False

    def images_per_step(self) -> int:
        # train.py ramps its accumulation up during warm-up: the batches since the last step say what it was
        return self.batch_size * max(1, self.batches_since_step)

    def make_model(self, *args, **kwargs) -> torch.nn.Module:
        self.model = self.module
        return self.model

    def steps(self) -> list[int]:
        """Optimizer steps in each epoch of this run, as train.py takes them: it accumulates batches up to NBS
        images a step, ramping up from one batch a step over its warm-up (at least 100 batches)."""
        told = self.told_batch
        batches, accumulate, last, out = len(self.loader), max(round(NBS / told), 1), -1, []
        warmup = max(round(self.warmup_epochs * batches), 100)
        for epoch in range(self.epochs):
            out.append(0)
            for ni in range(batches * epoch, batches * (epoch + 1)):
                if ni <= warmup:
                    accumulate = max(1, round(float(np.interp(ni, [0, warmup], [1, NBS / told]))))
                if ni - last >= accumulate:
                    out[-1], last = out[-1] + 1, ni
        return out[self.start_epoch :]

    def attach(self, optimizer) -> None:
        self.optimizer = optimizer
        self.device = next(self.model.parameters()).device
        optimizer.register_step_pre_hook(lambda *_: self.skip_warm_up())
        optimizer.register_step_post_hook(lambda *_: setattr(self, "batches_since_step", 0))

    def skip_warm_up(self) -> None:
        """train.py warms up for at least 100 batches whatever warmup_epochs says, its weights' lr rising from 0:
        on a trained model (warmup_epochs=0) each step then gets the lr and momentum of its schedule instead. Left
        to warm up, a converged yolov5s lost 0.10 mAP50-95 in 10 sparse epochs on the tree tiles (the penalty,
        calibrated against that ramp, zeroed channels the network had no lr to compensate for), against 0.01-0.02
        for Ultralytics' models, which skip the warm-up."""
        if self.warm_up or self.scheduler is None:
            return
        for group, lr in zip(self.optimizer.param_groups, self.scheduler.get_last_lr()):
            group["lr"] = lr
            if "momentum" in group:
                group["momentum"] = self.momentum

    def on_train_start(self) -> None:
        """The loader exists only now: the EMA's time constant a quarter of the run's steps (as trainer.SlimMixin's
        fit_ema_to_run), and the penalty's push spread over the steps before sr_step."""
        steps = self.steps()
        tau = min(EMA_TAU, max(EMA_SPAN * sum(steps), 1.0))
        if self.ema is not None:
            self.ema.decay = lambda updates: EMA_DECAY * (1 - math.exp(-updates / tau))
        if self.sparse:
            push_epochs = max(1, math.ceil(self.args.sr_step * self.epochs) - self.start_epoch)
            self.setup_sparsity(max(1, sum(steps[:push_epochs])) / push_epochs)

    def on_epoch_start(self) -> None:
        if self.sparse:
            self.say_if_pushing_on()

    def on_fit_epoch_end(self, *args) -> None:
        if self.sparse:
            row = {"epoch": self.epoch + 1, **self.sparsity_metrics()}
            path = self.save_dir / "sparsity.csv"
            new = not path.exists()
            with open(path, "a") as f:
                f.write((",".join(row) + "\n" if new else "") + ",".join(f"{v:.6g}" for v in row.values()) + "\n")
        self.epoch += 1

    def on_train_end(self, *args) -> None:
        if self.sparse:
            self.finish_sparsity()


def check_arguments(kwargs: dict) -> tuple[dict, dict]:
    """Ultralytics-named training arguments -> train.py's options and hyperparameters, or one line naming the
    argument it has no place for."""
    hyp_keys = set(yaml.safe_load(hyp_file().read_text()))
    options, hyp = {}, {}
    for key, value in kwargs.items():
        if key in OPTIONS:
            options[OPTIONS[key]] = value
        elif key in NEGATED:
            options[NEGATED[key]] = not value
        elif key in hyp_keys:
            hyp[key] = value
        elif key == "nbs":
            options["nbs"] = value
        elif key in FIXED:
            if value != FIXED[key]:
                raise YoloslimError(
                    f"{key}={value}: the yolov5 repository's train.py, which trains classic models, fixes it at "
                    f"{FIXED[key]}; leave {key}= out"
                )
        else:
            raise YoloslimError(
                f"{key}= is an Ultralytics argument the yolov5 repository's train.py (which trains classic models) "
                f"has no counterpart for; leave it out. It takes {', '.join([*OPTIONS, *NEGATED])} and the "
                f"hyperparameters {', '.join(sorted(hyp_keys))}"
            )
    if options.get("optimizer", "auto") not in (*OPTIMIZERS, "auto"):
        raise YoloslimError(f"optimizer={options['optimizer']}: train.py has {', '.join(OPTIMIZERS)} (or auto)")
    if isinstance(options.get("freeze"), int):
        options["freeze"] = [options["freeze"]]
    if options.get("device") is None:
        options["device"] = ""  # its select_device: the GPU when there is one, as Ultralytics' device=None
    return options, hyp


def hyperparameters(kind: str, options: dict, given: dict) -> dict:
    """train.py's hyp: hyp.scratch-low.yaml's with the given ones over it; optimizer=auto (options, changed here) is
    SGD, at SPARSE_LR0 for sparse training as in trainer.py. warmup_epochs=0 (Ultralytics' "no warm-up"): its
    warm-up's start values are the schedule's own too (ClassicRun.skip_warm_up sets each step's lr and momentum)."""
    hyp = {**yaml.safe_load(hyp_file().read_text()), **given}
    if options.get("optimizer", "auto") == "auto":
        options["optimizer"] = "SGD"  # the repository's default, at its hyp's lr0
        if kind == "sparse":
            LOGGER.info(f"sparse: optimizer=auto is SGD at lr0={SPARSE_LR0} (lr0= applies with optimizer=SGD)")
            hyp["lr0"] = SPARSE_LR0
    if hyp["warmup_epochs"] == 0:
        hyp["warmup_bias_lr"] = given.get("warmup_bias_lr", hyp["lr0"])
        hyp["warmup_momentum"] = given.get("warmup_momentum", hyp["momentum"])
    return hyp


def hyp_file() -> Path:
    return Path(classic.enable().__file__).parent / "data" / "hyps" / "hyp.scratch-low.yaml"


def fit_classes(model: torch.nn.Module, names: dict) -> None:
    """Give the anchor-based Detect one class output per name of the data (as trainer.fit_classes does for
    Ultralytics' heads): per anchor, the box and objectness rows are kept, class rows moved to their new index by
    name, new names start as the repository's bias init starts them; every other layer keeps its width."""
    head = model.model[-1]
    new = {int(k): str(v) for k, v in dict(names).items()}
    old = {int(k): str(v) for k, v in dict(getattr(model, "names", None) or {}).items()}
    placeholders = all(v == str(k) for k, v in old.items()) or all(v.startswith("class") for v in old.values())
    if head.nc == len(new) and (placeholders or old == new):
        return
    if hasattr(head, "nm"):
        raise YoloslimError("a classic segmentation model trains with the repository's segment/train.py, not hooked")
    nc, no_old, index = len(new), head.no, {name: i for i, name in sorted(old.items(), reverse=True)}
    no_new = 5 + nc
    for level, conv in enumerate(head.m):
        fresh = torch.nn.Conv2d(conv.in_channels, head.na * no_new, 1).to(conv.weight.device)
        with torch.no_grad():
            stride = float(head.stride[level]) if len(head.stride) > level else 8.0 * 2**level
            for a in range(head.na):
                rows = slice(a * no_new, (a + 1) * no_new)
                bias = fresh.bias[rows]
                bias[4] = math.log(8 / (640 / stride) ** 2)  # the repository's objectness init
                bias[5:] = math.log(0.6 / (nc - 0.99 + 1e-9)) if nc > 1 else 0.0
                fresh.weight[a * no_new : a * no_new + 5] = conv.weight[a * no_old : a * no_old + 5]
                fresh.bias[a * no_new : a * no_new + 5] = conv.bias[a * no_old : a * no_old + 5]
                for new_id, name in new.items():
                    if index.get(name, head.nc) < head.nc:
                        fresh.weight[a * no_new + 5 + new_id] = conv.weight[a * no_old + 5 + index[name]]
                        fresh.bias[a * no_new + 5 + new_id] = conv.bias[a * no_old + 5 + index[name]]
        head.m[level] = fresh
    LOGGER.info(f"yoloslim: {class_mapping(old, new, head.nc)}; every other layer keeps its width and weights")
    head.nc, head.no = nc, no_new
    model.nc, model.names = nc, dict(new)
    if isinstance(getattr(model, "yaml", None), dict):
        model.yaml["nc"] = nc


def data_file(data, folder: Path) -> Path:
    """The data resolved as Ultralytics resolves it (a relative path: from the yaml's folder or the datasets
    folder), written with absolute paths: train.py would resolve a relative one against its own package folder."""
    resolved = check_det_dataset(str(data))
    out = {"path": str(Path(resolved["path"]).resolve()), "train": resolved["train"], "val": resolved["val"]}
    out.update(nc=resolved["nc"], names=resolved["names"])
    path = folder / "data.yaml"
    path.write_text(yaml.safe_dump(out, sort_keys=False))
    return path


@contextlib.contextmanager
def hooked(run: ClassicRun):
    """train.py's names replaced for the run, and put back after it, whatever happens."""
    import yolov5.train as train_py
    import yolov5.utils.general as general

    saved = {name: getattr(train_py, name) for name in HOOKED}
    font = general.check_font

    def optimizer(*args, **kwargs):
        opt = saved["smart_optimizer"](*args, **kwargs)
        run.attach(opt)
        return opt

    def ema(model, *args, **kwargs):
        run.ema = saved["ModelEMA"](model, *args, **kwargs)
        return run.ema

    def loader(path, imgsz, batch_size, *args, **kwargs):
        if run.loader_batch:  # the training loader nbs= images a batch, the val loader twice that (as train.py)
            batch_size = run.loader_batch * (1 if run.loader is None else 2)
        out = saved["create_dataloader"](path, imgsz, batch_size, *args, **kwargs)
        if run.loader is None:  # the first is the training loader
            run.loader, run.batch_size = out[0], out[0].batch_size
        return out

    def check_font(*args, **kwargs):
        with contextlib.suppress(OSError):  # offline (URLError): its plots fall back to PIL's own font
            font(*args, **kwargs)

    def scheduler(*args, **kwargs):
        run.scheduler = torch.optim.lr_scheduler.LambdaLR(*args, **kwargs)
        return run.scheduler

    replaced = {
        "lr_scheduler": SimpleNamespace(LambdaLR=scheduler),  # train.py uses its LambdaLR alone
        "Model": run.make_model,
        "smart_optimizer": optimizer,
        "ModelEMA": ema,
        "create_dataloader": loader,
        "check_requirements": lambda *a, **k: None,  # it would pip-install what it misses
    }
    try:
        for name, fn in replaced.items():
            setattr(train_py, name, fn)
        general.check_font = check_font
        yield train_py
    finally:
        for name, fn in saved.items():
            setattr(train_py, name, fn)
        general.check_font = font


def train(kind: str, module: torch.nn.Module, source, data, **kwargs) -> Path:
    """Train a classic model with the repository's train.py (kind "slim": plain, "sparse": with the penalty, whose
    settings sr ... ride in kwargs); returns best.pt. module: the model to train, as loaded from source."""
    sparse = {k: kwargs.pop(k) for k in ("sr", "sr_schedule", "sr_step", "penalty", "sr_share") if k in kwargs}
    if classic.task_of(module) != "detect":
        raise YoloslimError(
            f"{source} is a classic segmentation model; yoloslim trains classic detection models (the repository's "
            "segment/train.py is not hooked)"
        )
    options, hyp_given = check_arguments(kwargs)
    resume = options.pop("resume", False)
    classic.enable()
    from yolov5.utils.callbacks import Callbacks
    from yolov5.utils.general import increment_path

    module = classic.retarget(copy.deepcopy(module), "yolov5").float()
    start_epoch, epochs = 0, int(options.get("epochs", 100))
    if resume:
        last = Path(resume if isinstance(resume, (str, Path)) else source)
        with classic.trusted_loads():
            ckpt = torch.load(last, map_location="cpu")
        if ckpt.get("epoch", -1) == -1 or ckpt.get("optimizer") is None:
            raise YoloslimError(
                f"resume={last} is a finished run (or not a run's last.pt): nothing to resume; "
                f"start a new training from it with model={last} (without resume=)"
            )
        module, start_epoch = classic.check(ckpt["model"], str(last)).float(), ckpt["epoch"] + 1
        save_dir, stored = last.parent.parent, yaml.safe_load((last.parent.parent / "opt.yaml").read_text())
        sparse, epochs, hyp = stored.get("yoloslim_sparse") or {}, stored["epochs"], stored["hyp"]
        loader_batch, told_batch = stored.get("yoloslim_batch"), stored["batch_size"]
        opt = {"resume": str(last)}
    else:
        hyp = hyperparameters(kind, options, hyp_given)
        # train.py steps every 64 images (a literal); nbs=batch (yoloslim's pipeline) is honoured by telling it the
        # batch is 64 (so it accumulates nothing and scales weight decay by 1, as Ultralytics does at nbs=batch) while
        # the loader yields batch images: one optimizer step a batch
        told_batch = loader_batch = int(options.get("batch_size", 16))
        nbs = int(options.pop("nbs", NBS))
        if nbs != NBS and nbs != loader_batch:
            raise YoloslimError(
                f"nbs={nbs} with batch={loader_batch}: the yolov5 repository's train.py, which trains classic models, "
                f"steps every 64 images; yoloslim can make it step every batch instead (nbs=batch), not every {nbs} "
                f"images: give nbs={loader_batch}, or nbs=64 (its own rule)"
            )
        if nbs != NBS:
            told_batch = options["batch_size"] = NBS
            LOGGER.info(
                f"nbs={nbs}: train.py is told batch_size={NBS} (so it steps every batch, as it does at 64) while its "
                f"loader yields {loader_batch} images a batch: one optimizer step every {nbs} images"
            )
        else:
            loader_batch = None
        project, name = Path(options.pop("project", "runs/yoloslim")), options.pop("name", "train")
        save_dir = Path(increment_path(project / name, exist_ok=options.pop("exist_ok", False)))
        names = check_det_dataset(str(data))["names"]
        if isinstance(source, (str, Path)) and str(source).endswith((".yaml", ".yml")):  # as train.py builds a yaml
            torch.manual_seed(int(options.get("seed", 0)) + 1)  # its seed before its build: the same start each run
            module = classic.retarget(classic.from_yaml(source, nc=len(names)), "yolov5").float()
            module.names = dict(names)
        else:
            fit_classes(module, names)
        opt = {**options, "project": str(project), "name": save_dir.name, "exist_ok": True, "cfg": ""}
    made = not save_dir.exists()
    save_dir.mkdir(parents=True, exist_ok=True)
    run = ClassicRun(module, epochs, start_epoch, hyp["warmup_epochs"], sparse if kind == "sparse" else None, save_dir)
    run.loader_batch, run.told_batch, run.momentum = loader_batch, told_batch, hyp["momentum"]
    callbacks = Callbacks()
    callbacks.register_action("on_train_start", "yoloslim", lambda *a: run.on_train_start())
    callbacks.register_action("on_train_epoch_start", "yoloslim", lambda *a: run.on_epoch_start())
    callbacks.register_action("on_train_batch_start", "yoloslim", lambda *a: count_batch(run))
    callbacks.register_action("on_fit_epoch_end", "yoloslim", lambda *a: run.on_fit_epoch_end(*a))
    callbacks.register_action("on_train_end", "yoloslim", lambda *a: run.on_train_end(*a))
    try:
        with tempfile.TemporaryDirectory() as tmp, classic.trusted_loads(), hooked(run) as train_py:
            warnings.filterwarnings("ignore", message=r".*torch\.cuda\.amp\..* is deprecated", category=FutureWarning)
            if not resume:
                weights = Path(tmp) / "start.pt"
                torch.save({"model": module, "epoch": -1}, weights)  # train.py reads its yaml and state from here
                hyp_path = Path(tmp) / "hyp.yaml"
                hyp_path.write_text(yaml.safe_dump(hyp, sort_keys=False))
                data_yaml = data_file(data, save_dir)
                opt.update(weights=str(weights), data=str(data_yaml), hyp=str(hyp_path))
                opt.update(yoloslim_sparse=run.sparse, yoloslim_batch=loader_batch)
            args = train_py.parse_opt(True)
            for key, value in opt.items():
                setattr(args, key, value)
            train_py.main(args, callbacks)
    except BaseException:
        if made and not (save_dir / "weights" / "last.pt").exists():
            shutil.rmtree(save_dir, ignore_errors=True)
        raise
    # train.py's best.pt is the epoch of best mAP, in sparse training often one before the push: its end is the model
    best, last = save_dir / "weights" / "best.pt", save_dir / "weights" / "last.pt"
    return best if best.exists() and kind != "sparse" else last


def count_batch(run: ClassicRun) -> None:
    run.batches_since_step += 1
