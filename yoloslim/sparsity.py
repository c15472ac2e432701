"""The sparsity penalty on BN gammas and its schedule: pure torch (the trainer adds its gradient; see trainer.py)."""

from __future__ import annotations

import torch

SCHEDULES = ("constant", "linear", "step")  # sr_factor's: how the penalty's weight changes over the epochs
PENALTIES = ("wide", "lowest", "l1")  # sparsity_penalty's: which gammas it pushes
MAX_GROUP_SHARE = 0.8  # wide, lowest: the most of one channel group they push to zero
ZERO_AT = 0.8  # sr=auto: the pushed channels' mean |gamma| reaches zero at this share of the push phase
RATE = 1.1  # sr=auto: sr changes by at most this factor per optimizer step
# A channel counts as zeroed when its strength (max |gamma| over the BNs that write it) is below this: the penalty
# stops gammas at exactly 0, and a prune of channels below it keeps the model's outputs (docs/sparsity.md).
NEAR_ZERO = 1e-2
# The push goes on past sr_step (step schedule) while the zeroed share is short of what was asked, at most to this
# share of the epochs, so the rest still recovers at sr/100: from a converged COCO-pretrained start the push
# stopped at 51% of the 60% asked when it ended at sr_step (docs/sparsity.md, "From a converged start").
PUSH_LIMIT = 0.85
REACHED = 0.99  # the share asked counts as reached at this fraction of it (a channel or two may climb back)


def calibrated_sr(
    sr: float, mean_now: float, mean_start: float, progress: float, zeroed: float = 1.0, asked: float = 0.0
) -> float:
    """sr=auto, one optimizer step: more push while the pushed channels are behind either of two lines, less when
    ahead of both (progress: 0..1 of the push phase). Their mean |gamma| should fall from its start to zero at
    ZERO_AT, and the share of channels at zero (zeroed) should rise to the share asked by then. The mean alone
    was not enough from a converged start: it fell while the channels the loss defends stayed above zero, and
    the push ended at 50% of the 60% asked (docs/sparsity.md). So the push is as weak as reaching the share in
    time allows, whatever the loss's scale, the learning rate or the number of steps."""
    target = mean_start * max(0.0, 1.0 - progress / ZERO_AT)
    behind = mean_now > target or zeroed < asked * min(1.0, progress / ZERO_AT)
    return min(1e3, max(1e-3, sr * RATE if behind else sr / RATE))


def pushed_count(group_sizes: list[int], share: float) -> int:
    """How many channels wide/lowest push: share of all, at most MAX_GROUP_SHARE of each group."""
    return min(round(share * sum(group_sizes)), sum(int(MAX_GROUP_SHARE * n) for n in group_sizes))


def channel_strengths(gammas: list[torch.Tensor], groups: list[list[tuple[int, int, int]]]) -> torch.Tensor:
    """Every prunable channel's strength, as the pruner ranks it: max |gamma| over the BNs that write it.
    groups as in sparsity_penalty: per group, (index into gammas, offset, size) of each BN that writes it."""
    return torch.cat(
        [torch.stack([gammas[i][o : o + n].detach().abs() for i, o, n in group]).amax(0) for group in groups]
    )


def zeroed_share(strengths: torch.Tensor) -> float:
    """The share of channels sparse training has zeroed (strength below NEAR_ZERO)."""
    return float((strengths < NEAR_ZERO).float().mean()) if len(strengths) else 0.0


def sr_factor(schedule: str, progress: float, step_at: float) -> float:
    """Multiplier of sr at a fraction `progress` of training."""
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 1.0 if progress < step_at else 0.01  # "step": drop to sr/100 after step_at of the epochs


def sparsity_penalty(
    gammas: list[torch.Tensor], kind: str, share: float, groups: list[list[tuple[int, int, int]]] | None = None
) -> torch.Tensor:
    """The sparsity term per unit of sr.

    gammas: the prunable BNs' gammas. groups: the pruner's channel groups, each a list of
    (index into gammas, offset, size) for the BNs that write it (None: each BN is a group of its own).

    l1:     sum |gamma|, Network Slimming's term.
    lowest: sum |gamma| over the weakest round(share * N) of all N prunable channels, over every BN that
            writes them. A channel's strength is its largest |gamma| (as the pruner ranks it) divided by the
            mean strength of its group, because the size of a layer's gammas says nothing about the layer
            (see the module docstring); at most MAX_GROUP_SHARE of any group is pushed, so no layer dies.
            The loss decides where the zeros go: a channel it needs climbs out of the weakest share, and
            the push moves on to the next weakest, in whichever layer that is.
    wide:   the same, with strength divided by the group's total instead of its mean: a channel's share of
            its group. One of 256 channels holds about 1/256, one of 16 about 1/16, so wide groups give up
            channels first: those cost the network least (measured, see README)."""
    if kind == "l1":
        return torch.stack([gamma.abs().sum() for gamma in gammas]).sum()
    if groups is None:
        groups = [[(i, 0, len(gamma))] for i, gamma in enumerate(gammas)]
    # |gamma| of each group: one row per BN that writes it
    magnitudes = [
        torch.stack([gammas[i][offset : offset + size].abs() for i, offset, size in group]) for group in groups
    ]
    scores = []
    for magnitude in magnitudes:
        strength = magnitude.detach().amax(0)
        score = strength / (strength.sum() if kind == "wide" else strength.mean()).clamp_min(1e-12)
        score[score.argsort().argsort() >= int(MAX_GROUP_SHARE * len(score))] = torch.inf  # the strongest stay
        scores.append(score)
    everything = torch.cat(scores)
    pushed = torch.zeros_like(everything)
    pushed[everything.topk(pushed_count([len(s) for s in scores], share), largest=False).indices] = 1
    return sum((magnitude * part).sum() for magnitude, part in zip(magnitudes, pushed.split([len(s) for s in scores])))
