"""The penalty's part of sparse training, for any training loop that steps a torch optimizer: Ultralytics' trainers
(yoloslim/trainer.py) and the yolov5 repository's train.py (yoloslim/classic_train.py).

The loop's object inherits SparsityRun and has: args (sr, sr_schedule, sr_step, penalty, sr_share, nbs), epoch,
epochs, start_epoch, model, ema (or None), optimizer, batch_size, device, save_dir, and images_per_step() (the
images whose loss gradient one optimizer step applies). setup_sparsity() then hooks the optimizer's step: the
gradient of sr * penalty joins the loss's just before it (docs/sparsity.md, "How the penalty joins training").
"""

from __future__ import annotations

import csv
import functools
import math
import time
from pathlib import Path

import numpy as np
import torch

from .log import LOGGER
from .slimming import graph_of
from .sparsity import (
    PUSH_LIMIT,
    REACHED,
    calibrated_sr,
    channel_strengths,
    pushed_count,
    sparsity_penalty,
    sr_factor,
    zeroed_share,
)

HIST_BINS = np.concatenate([[0.0], np.logspace(-4, 1, 41)])  # |gamma| bins, log-spaced, first one catches 0


def unwrapped(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DataParallel/DDP wrapper (either loop's)."""
    return model.module if hasattr(model, "module") else model


def timed(method):
    """Adds the method's wall time to self.penalty_seconds (the penalty's cost, reported per epoch)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.penalty_seconds += time.perf_counter() - start

    return wrapper


class SparsityRun:
    """The penalty on the prunable BN gammas, its schedule, and the sparsity a run reports (see the module's doc)."""

    def images_per_step(self) -> int:
        return self.batch_size * self.accumulate

    def setup_sparsity(self, steps_per_epoch: int) -> None:
        """Find the prunable gammas and hook the optimizer; steps_per_epoch: optimizer steps in one epoch."""
        self.penalty_seconds, self.said_pushing_on = getattr(self, "penalty_seconds", 0.0), False
        model = unwrapped(self.model)
        names = {id(m): n for n, m in model.named_modules()}
        groups = [g for g in graph_of(model).groups() if not g.frozen_reasons]
        bns = {id(p.bn): p.bn for g in groups for p in g.producers if p.bn}
        self.gammas = [(names[i], bn.weight) for i, bn in bns.items()]
        index = {i: n for n, i in enumerate(bns)}
        self.penalty_groups = [[(index[id(p.bn)], p.offset, g.size) for p in g.producers if p.bn] for g in groups]
        if self.device.type == "cpu":
            # Channels near zero make subnormal floats, which x86 CPUs process far slower: measured here,
            # sparse epochs took 14% longer than plain ones (up to 40% after the collapse); flushed, 1.8%.
            torch.set_flush_denormal(True)
        # sr=auto (None): sr is recalibrated every step of the push phase (before sr_step) so the pushed share
        # reaches zero in time (sparsity.calibrated_sr); l1 pushes every channel, so it keeps sr=1 instead.
        self.sr_auto = self.args.sr is None and self.args.penalty != "l1"
        self.sr_value = 1.0 if self.args.sr is None else float(self.args.sr)
        self.pushed = max(1, pushed_count([g.size for g in groups], self.args.sr_share))
        self.share_asked = self.pushed / max(1, sum(g.size for g in groups))
        self.zeroed = self.zeroed_now() if self.gammas else 0.0  # after each step: read by sr=auto and the latch
        self.reached = bool(self.gammas) and self.zeroed >= REACHED * self.share_asked  # a resume past it
        push_epochs = math.ceil(self.args.sr_step * self.epochs) - self.start_epoch  # after a resume: what is left
        self.push_total, self.push_done, self.mean_start = steps_per_epoch * max(1, push_epochs), 0, None
        self.signs_before_step: list[torch.Tensor] = []
        self.optimizer.register_step_pre_hook(lambda *_: self.before_step())
        self.optimizer.register_step_post_hook(lambda *_: self.after_step())

    def finish_sparsity(self) -> None:
        """At the end of the run: gammas.png, the share reached, and floats as they were."""
        self.plot_gammas()
        self.report_share()
        torch.set_flush_denormal(False)

    def before_step(self) -> None:
        """Inside optimizer.step(): the loss gradient is unscaled and clipped by now (Ultralytics' optimizer_step)."""
        self.add_penalty_gradient()
        self.remember_signs()

    @timed
    def add_penalty_gradient(self) -> None:
        """d/dgamma of sr * penalty per nominal batch, in the unscaled units of the (clipped) loss gradient."""
        if not self.gammas or self.args.sr == 0:
            return
        leaves = [gamma.detach().requires_grad_() for _, gamma in self.gammas]
        with torch.enable_grad():
            penalty = sparsity_penalty(leaves, self.args.penalty, self.args.sr_share, self.penalty_groups)
            grads = torch.autograd.grad(penalty, leaves)
        if self.sr_auto and self.pushing():
            mean_now = float(penalty.detach()) / self.pushed
            self.mean_start = mean_now if self.mean_start is None else self.mean_start
            self.sr_value = calibrated_sr(
                self.sr_value,
                mean_now,
                self.mean_start,
                self.push_done / self.push_total,
                zeroed=self.zeroed,
                asked=self.share_asked,
            )
            self.push_done += 1
        weight = self.sr_now() * self.images_per_step() / self.args.nbs
        with torch.no_grad():
            for (_, gamma), grad in zip(self.gammas, grads):
                if gamma.grad is None:
                    gamma.grad = torch.zeros_like(gamma)
                gamma.grad.add_(grad, alpha=weight)

    def sr_now(self) -> float:
        base = self.sr_value if self.args.sr is None else float(self.args.sr)  # a set sr (0 too) is used as given
        if self.args.sr_schedule == "step" and self.pushing():
            return base
        return base * sr_factor(self.args.sr_schedule, self.epoch / max(self.epochs, 1), self.args.sr_step)

    def pushing(self) -> bool:
        """The push phase: before sr_step, and (step schedule) past it while the zeroed share is short of the share
        asked, up to PUSH_LIMIT of the epochs; sr=auto keeps calibrating through it (its line is at zero by then,
        so sr grows until the loss gives the pushed channels up)."""
        progress = self.epoch / max(self.epochs, 1)
        if progress < self.args.sr_step:
            return True
        return self.args.sr_schedule == "step" and not self.reached and progress < PUSH_LIMIT

    def zeroed_now(self, model: torch.nn.Module | None = None) -> float:
        """The share of the prunable channels at zero, in the model being trained or (model=) another copy of it."""
        if model is None:
            gammas = [gamma for _, gamma in self.gammas]
        else:
            modules = dict(model.named_modules())
            gammas = [modules[name].weight for name, _ in self.gammas]
        return zeroed_share(channel_strengths(gammas, self.penalty_groups)) if gammas else 0.0

    def say_if_pushing_on(self) -> None:
        progress = self.epoch / max(self.epochs, 1)
        if self.said_pushing_on or not self.gammas or progress < self.args.sr_step or not self.pushing():
            return
        self.said_pushing_on = True
        LOGGER.info(
            f"sparse: {self.zeroed_now():.1%} of the prunable channels are at zero at sr_step={self.args.sr_step:g}, "
            f"{self.share_asked:.1%} asked: the push goes on until they are (at most to {PUSH_LIMIT:.0%} of the epochs)"
        )

    def report_share(self) -> None:
        """One line at the end: the share of the prunable channels the saved model has at zero against the share
        asked, and, when it fell short, what pruning past it means and what to change."""
        if not self.gammas or self.args.sr == 0:
            return
        zeroed = self.zeroed_now(self.ema.ema if self.ema else unwrapped(self.model))
        safe = math.floor(zeroed * 100) / 100
        if zeroed >= REACHED * self.share_asked:
            LOGGER.info(
                f"sparse: {zeroed:.1%} of the prunable channels are at zero ({self.share_asked:.1%} asked): "
                f"a prune up to ratio={safe:g} removes only zeros"
            )
            return
        LOGGER.warning(
            f"warning: sparse training zeroed {zeroed:.1%} of the prunable channels, {self.share_asked:.1%} asked "
            f"(sr_share={self.args.sr_share:g}): a prune above ratio={safe:g} removes channels the model still uses. "
            "Train longer (more epochs=), push harder (a larger sr=), or prune at ratio<=" + f"{safe:g}"
        )

    @timed
    @torch.no_grad()
    def remember_signs(self) -> None:
        self.signs_before_step = [gamma.sign() for _, gamma in self.gammas] if self.sr_now() else []

    def after_step(self) -> None:
        self.stop_at_zero()
        self.keep_zeros_in_ema()
        if self.gammas and self.sr_now():
            self.zeroed = self.zeroed_now()
            self.reached = self.reached or self.zeroed >= REACHED * self.share_asked

    @timed
    @torch.no_grad()
    def keep_zeros_in_ema(self) -> None:
        """A gamma the penalty holds at zero is zero in the EMA (the saved model) too, so a prune of the saved model
        removes exact zeros. The EMA update comes after this hook and then averages 0 with 0; without it the
        EMA's copy would only decay towards zero, and in a short run still be far from it."""
        if not self.ema or not self.gammas or not self.sr_now():
            return
        modules = dict(self.ema.ema.named_modules())
        for name, gamma in self.gammas:
            modules[name].weight[gamma == 0] = 0

    @timed
    @torch.no_grad()
    def stop_at_zero(self) -> None:
        """A gamma that the step carried across zero stops at zero, and so does its momentum. The penalty's
        gradient flips sign at zero, so without this a gamma would swing around zero by ~lr * sr / (1 - momentum)
        and never settle there; at zero the penalty's gradient is 0 and only the loss can pull it out again."""
        for (_, gamma), before in zip(self.gammas, self.signs_before_step):
            crossed = gamma.sign() * before < 0
            if crossed.any():
                gamma[crossed] = 0
                state = self.optimizer.state.get(gamma, {})
                for key in ("momentum_buffer", "exp_avg"):  # SGD's and Adam's first moments
                    if torch.is_tensor(state.get(key)):
                        state[key][crossed] = 0

    def gamma_values(self) -> torch.Tensor:
        """|gamma| of the prunable BNs in the model that gets saved (the EMA when there is one)."""
        model = self.ema.ema if self.ema else unwrapped(self.model)
        modules = dict(model.named_modules())
        return torch.cat([modules[name].weight.detach().abs().float().flatten().cpu() for name, _ in self.gammas])

    def save_gamma_histogram(self, g: torch.Tensor) -> None:
        counts, _ = np.histogram(g.numpy().clip(0, HIST_BINS[-1]), bins=HIST_BINS)
        path = Path(self.save_dir) / "gammas.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            if new:
                csv.writer(f).writerow(["epoch", *[f"{b:.3g}" for b in HIST_BINS[1:]]])
            csv.writer(f).writerow([self.epoch + 1, *counts.tolist()])

    def plot_gammas(self) -> None:
        """gammas.png: the gamma distribution over epochs (drawn even with plots=False: it is the proof)."""
        from .report import plot_gamma_history  # deferred: report loads matplotlib, only needed when a plot is drawn

        if (Path(self.save_dir) / "gammas.csv").exists():
            plot_gamma_history(Path(self.save_dir) / "gammas.csv", Path(self.save_dir) / "gammas.png")

    def sparsity_metrics(self) -> dict:
        """This epoch's sparsity/* columns (and a row of gammas.csv); {} when the model has no prunable gammas."""
        if not self.gammas:
            return {}
        g = self.gamma_values()
        out = {
            "sparsity/gamma<1e-2": float((g < 1e-2).float().mean()),
            "sparsity/gamma<1e-3": float((g < 1e-3).float().mean()),
            "sparsity/mean_gamma": float(g.mean()),
            "sparsity/zeroed": self.zeroed_now(self.ema.ema if self.ema else unwrapped(self.model)),
            "sparsity/sr": self.sr_now(),
            # on a GPU this counts launch time only (no sync): a lower bound there
            "sparsity/penalty_s": self.penalty_seconds,
        }
        self.penalty_seconds = 0.0
        self.save_gamma_histogram(g)
        return out
