"""Which channels to keep: importance per group, a global cut, per-group floors and rounding.

Importance of channel j of a group is max |gamma| over the BNs that write it (see Group.importance):
removing j silences every one of those layers, so j is only unimportant when all of them are.
The cut is global (Network Slimming): `ratio` removes that fraction of all prunable channels,
lowest importance first; `threshold` removes every channel whose importance is below it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

import torch

from .errors import YoloslimError
from .graph import Graph, Group
from .io import atomic_write_text
from .sparsity import MAX_GROUP_SHARE

PLAN_FORMAT = 1


@dataclass
class Plan:
    kept: dict[str, list[int]]  # group name -> sorted kept channel indices (prunable groups only)
    sizes: dict[str, int]  # group name -> channels before
    fingerprint: str  # the architecture the plan was made for
    settings: dict = field(default_factory=dict)

    @property
    def removed(self) -> int:
        return sum(self.sizes[n] - len(k) for n, k in self.kept.items())

    @property
    def prunable(self) -> int:
        return sum(self.sizes[n] for n in self.kept)

    def save(self, path) -> None:
        data = {
            "yoloslim_plan": PLAN_FORMAT,
            "fingerprint": self.fingerprint,
            "settings": self.settings,
            "removed": self.removed,
            "prunable": self.prunable,
            "groups": {n: {"size": self.sizes[n], "kept": k} for n, k in self.kept.items()},
        }
        atomic_write_text(path, json.dumps(data, indent=1))

    @classmethod
    def load(cls, path) -> Plan:
        try:
            data = json.loads(open(path).read())
            assert data.get("yoloslim_plan") == PLAN_FORMAT
            groups = data["groups"]
            return cls(
                {n: list(g["kept"]) for n, g in groups.items()},
                {n: g["size"] for n, g in groups.items()},
                data["fingerprint"],
                data.get("settings", {}),
            )
        except FileNotFoundError:
            raise YoloslimError(f"plan file {path} does not exist; make one with 'yoloslim prune'") from None
        except (ValueError, KeyError, TypeError, AssertionError):
            raise YoloslimError(f"{path} is not a yoloslim plan.json; make one with 'yoloslim prune'") from None


def fingerprint(graph: Graph) -> str:
    """Identifies the architecture (group names and sizes): a plan only applies to the same one."""
    text = ";".join(f"{g.name}:{g.size}:{bool(g.frozen_reasons)}" for g in graph.groups())
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def keep_floor(size: int, min_keep) -> int:
    """min_keep: a fraction (0 <= f < 1) of the group, a count (int >= 1), or a (fraction, count) pair."""
    items = min_keep if isinstance(min_keep, (tuple, list)) else [min_keep]
    floor = 0
    for item in items:
        if isinstance(item, (int, float)) and 0 <= item < 1:
            floor = max(floor, math.ceil(item * size))
        elif isinstance(item, (int, float)) and item >= 1 and float(item).is_integer():
            floor = max(floor, int(item))
        else:
            raise YoloslimError(f"min_keep={item!r} is neither a fraction in [0, 1) nor a whole channel count >= 1")
    return min(floor, size)


MAX_GROUP_RATIO = MAX_GROUP_SHARE  # the most a group loses by default: what sparse training pushes to zero at most


def make_plan(
    graph: Graph,
    ratio: float | None = None,
    threshold: float | None = None,
    min_keep=0.05,
    round_to: int = 1,
    max_group_ratio: float = MAX_GROUP_RATIO,
) -> Plan:
    """max_group_ratio: the largest share of one group a global cut may remove, so that a global threshold
    cannot gut a layer whose gammas are small overall (its default, 0.8, is the most of a group that sparse
    training pushes to zero: sparsity.MAX_GROUP_SHARE)."""
    if (ratio is None) == (threshold is None):
        raise YoloslimError("give exactly one of ratio= (fraction of prunable channels to remove) or threshold=")
    if ratio is not None and not 0 < ratio < 1:
        raise YoloslimError(f"ratio={ratio} is impossible: it is the fraction of channels to remove, 0 < ratio < 1")
    if threshold is not None and threshold < 0:
        raise YoloslimError(f"threshold={threshold} is negative; |gamma| thresholds are >= 0")
    if not isinstance(round_to, int) or round_to < 1:
        raise YoloslimError(f"round_to={round_to!r} must be a whole number >= 1")
    if not 0 < max_group_ratio <= 1:
        raise YoloslimError(f"max_group_ratio={max_group_ratio} must be a share of a group, 0 < max_group_ratio <= 1")

    groups = [g for g in graph.groups() if not g.frozen_reasons]
    if not groups:
        raise YoloslimError("this model has no prunable channel groups ('yoloslim inspect' shows why)")
    scores = {g: g.importance() for g in groups}
    all_scores = torch.cat([scores[g] for g in groups])
    if ratio is not None:
        n_remove = int(ratio * len(all_scores))
        order = torch.argsort(all_scores, stable=True)
        removed = torch.zeros(len(all_scores), dtype=torch.bool)
        removed[order[:n_remove]] = True
        threshold_used = float(all_scores[order[n_remove]]) if n_remove < len(all_scores) else math.inf
    else:
        assert threshold is not None  # exactly one of ratio and threshold, checked above
        removed = all_scores < threshold
        threshold_used = threshold

    counts, start = {}, 0
    for g in groups:
        gone = int(removed[start : start + g.size].sum())
        start += g.size
        want = g.size - gone
        floor = max(keep_floor(g.size, min_keep), math.ceil((1 - max_group_ratio) * g.size - 1e-9))
        if want == 0 and floor == 0:
            cut = f"threshold={threshold}" if threshold is not None else f"ratio={ratio}"
            raise YoloslimError(
                f"{cut} with min_keep={min_keep} would remove every channel of {g.name}; lower it or raise min_keep"
            )
        counts[g] = min(g.size, math.ceil(max(want, floor) / round_to) * round_to)
    for members in graph.tie_classes():  # equal halves: keep the larger count in each
        live = [g for g in members if g in counts]
        n = max((counts[g] for g in live), default=0)
        for g in live:
            counts[g] = n

    kept = {
        g.name: sorted(torch.argsort(scores[g], descending=True, stable=True)[: counts[g]].tolist()) for g in groups
    }
    removed_max, kept_median = removal_stats(scores, kept)
    settings = {
        "ratio": ratio,
        "threshold": threshold,
        "threshold_used": threshold_used,
        "min_keep": min_keep,
        "round_to": round_to,
        "max_group_ratio": max_group_ratio,
        "importance": "max |gamma| over a group's BNs",
        "removed_importance_max": removed_max,
        "kept_importance_median": kept_median,
    }
    return Plan(kept, {g.name: g.size for g in groups}, fingerprint(graph), settings)


def removal_stats(scores: dict[Group, torch.Tensor], kept: dict[str, list[int]]) -> tuple[float, float]:
    """(largest importance among the removed channels, median importance of the kept ones): how far from
    zero a prune cuts."""
    removed_parts, kept_parts = [], []
    for g, score in scores.items():
        mask = torch.zeros(len(score), dtype=torch.bool)
        mask[kept[g.name]] = True
        removed_parts.append(score[~mask])
        kept_parts.append(score[mask])
    removed, stays = torch.cat(removed_parts), torch.cat(kept_parts)
    return (float(removed.max()) if len(removed) else 0.0), float(stays.median())


def resolve(graph: Graph, plan: Plan) -> dict[Group, list[int]]:
    """Check a plan against the graph (same architecture, valid indices, equal halves) and map it to groups."""
    if plan.fingerprint != fingerprint(graph):
        raise YoloslimError(
            "the plan was made for a different architecture than this model; "
            "make a new plan for it with 'yoloslim prune'"
        )
    by_name = {g.name: g for g in graph.groups()}
    out = {}
    for name, kept in plan.kept.items():
        g = by_name.get(name)
        if g is None or g.frozen_reasons:
            raise YoloslimError(f"the plan prunes {name}, which is not a prunable group of this model")
        if not kept or len(set(kept)) != len(kept) or min(kept) < 0 or max(kept) >= g.size:
            raise YoloslimError(f"the plan's kept channels for {name} are empty, repeated or out of 0..{g.size - 1}")
        out[g] = sorted(kept)
    for members in graph.tie_classes():
        n = {len(out.get(g, range(g.size))) for g in members}
        if len(n) > 1:
            raise YoloslimError(
                f"the plan keeps unequal counts {sorted(n)} in the halves of {members[0].name}; "
                "a chunk/split needs equal halves"
            )
    return out
