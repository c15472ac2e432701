"""Channel graph: which output channels of which layers must be removed together.

A *group* is one channel space: a set of producers (conv+BN layers whose output channels
[offset, offset + size) are this space) and consumers (convs that read it at some input offset).
Channel j of a group is one channel everywhere: removing it removes output channel j of every
producer and the matching input channel of every consumer. Residual adds merge groups; a split
into equal halves *ties* groups (they must keep equal counts); concats only place groups side by
side. When an add or a split cuts across a group (a tensor added to two halves that are one group,
as in GhostBottleneck; a chunk of a layer's output, as in ADown), the group is split into parts
first, each part one group from then on. Groups that must not change carry the reasons why (frozen).

Pure Python over torch modules: the Ultralytics-specific wiring lives in yoloslim/blocks/.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(eq=False)
class Producer:
    conv: nn.Conv2d
    bn: nn.BatchNorm2d | None
    offset: int
    depthwise: bool = False  # a depthwise conv carries its input's channels straight through


@dataclass(eq=False)
class Consumer:
    conv: nn.Conv2d
    bn: nn.BatchNorm2d | None  # where removed channels' constant output is folded (else conv.bias)
    offset: int


@dataclass(eq=False)
class ChannelParam:
    """A per-channel tensor outside conv and BN (e.g. A2C2f's residual scale), sliced along dim 0 with its group."""

    owner: nn.Module
    attr: str
    offset: int


@dataclass(eq=False)
class Group:
    size: int
    name: str
    producers: list[Producer] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)
    frozen_reasons: list[str] = field(default_factory=list)  # why it must not change; empty: prunable
    params: list[ChannelParam] = field(default_factory=list)
    parent: Group | None = None  # merged into parent by a residual add
    parts: list[Group] = field(default_factory=list)  # split into these (side by side); this group is gone

    def root(self) -> Group:
        g = self
        while g.parent is not None:
            g = g.parent
        return g

    def leaves(self) -> list[Group]:
        """The live groups this one stands for now: its root, or the root's parts when it was split."""
        g = self.root()
        return [leaf for p in g.parts for leaf in p.leaves()] if g.parts else [g]

    def gammas(self) -> list[torch.Tensor]:
        return [p.bn.weight.detach()[p.offset : p.offset + self.size] for p in self.producers if p.bn is not None]

    def importance(self) -> torch.Tensor:
        """max |gamma| over producers: a channel is unimportant only if every layer writing it is."""
        gammas = self.gammas()
        if not gammas:
            return torch.ones(self.size)
        return torch.stack([g.abs().float() for g in gammas]).amax(0)


class FeatureMap:
    """A feature map seen as the groups laid side by side along its channel axis."""

    def __init__(self, groups: list[Group]):
        self._groups = list(groups)

    @property
    def groups(self) -> list[Group]:
        return [leaf for g in self._groups for leaf in g.leaves()]

    @property
    def channels(self) -> int:
        return sum(g.size for g in self._groups)

    def parts(self) -> list[FeatureMap]:
        return [FeatureMap([g]) for g in self._groups]


def boundaries(x: FeatureMap) -> list[int]:
    """Where each of x's groups starts along the channel axis."""
    starts, at = [], 0
    for g in x.groups:
        starts.append(at)
        at += g.size
    return starts


class UnsupportedModuleError(Exception):
    def __init__(self, where: str, cls: str):
        self.where, self.cls = where, cls
        super().__init__(
            f"{where}: {self.cls} is not supported by the pruner; nothing was pruned. "
            "Supported blocks are listed in yoloslim/blocks/ (add one file there to support a new block)"
        )


class Graph:
    def __init__(self, model: nn.Module):
        self._names = {id(m): n for n, m in model.named_modules()}
        self._groups: list[Group] = []
        self._ties: list[tuple[Group, Group]] = []

    def name(self, module: nn.Module) -> str:
        return self._names.get(id(module), type(module).__name__)

    def new_group(self, size: int, name: str, frozen: str | None = None) -> Group:
        g = Group(size, name, frozen_reasons=[frozen] if frozen else [])
        self._groups.append(g)
        return g

    def untraced(self, channels: int, name: str = "input", reason: str = "model input (image channels)") -> FeatureMap:
        """A tensor the graph does not trace the origin of (the image, or a slice inside a frozen block)."""
        return FeatureMap([self.new_group(channels, name, frozen=reason)])

    def conv(self, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, x: FeatureMap, parts: int = 1) -> FeatureMap:
        """conv(+BN) reading x. parts=2 splits its output into two equal halves that stay equal (chunk)."""
        if conv.in_channels != x.channels:
            raise ValueError(f"{self.name(conv)} reads {conv.in_channels} channels, graph has {x.channels}")
        if conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels and parts == 1:
            offset = 0
            for g in x.groups:
                g.producers.append(Producer(conv, bn, offset, depthwise=True))
                offset += g.size
            return x
        self.consume(conv, bn, x)
        size = conv.out_channels // parts
        out = [
            self.new_group(size, f"{self.name(conv)}[{i * size}:{(i + 1) * size}]" if parts > 1 else self.name(conv))
            for i in range(parts)
        ]
        for i, g in enumerate(out):
            g.producers.append(Producer(conv, bn, i * size))
        for a, b in zip(out, out[1:]):
            self._ties.append((a, b))
        if conv.groups > 1:  # grouped (not depthwise) conv: channel blocks are interleaved per group
            reason = f"grouped convolution {self.name(conv)} (groups={conv.groups})"
            self.freeze(x, reason)
            for g in out:
                g.frozen_reasons.append(reason)
        return FeatureMap(out)

    def consume(self, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, x: FeatureMap) -> None:
        offset = 0
        for g in x.groups:
            g.consumers.append(Consumer(conv, bn, offset))
            offset += g.size

    def add(self, a: FeatureMap, b: FeatureMap) -> FeatureMap:
        """Elementwise sum: channel j of a and of b become one channel."""
        if a.channels != b.channels:
            raise ValueError(f"residual add of {a.channels} and {b.channels} channels")
        self.align(a, b)
        for ga, gb in zip(a.groups, b.groups):
            self.merge(ga, gb)
        return a

    def merge(self, a: Group, b: Group) -> None:
        keep, gone = a.root(), b.root()
        if keep is gone:
            return
        keep.producers += gone.producers
        keep.consumers += gone.consumers
        keep.params += gone.params
        keep.frozen_reasons += [r for r in gone.frozen_reasons if r not in keep.frozen_reasons]
        gone.producers, gone.consumers, gone.params, gone.frozen_reasons = [], [], [], []
        gone.parent = keep

    def align(self, *maps: FeatureMap) -> None:
        """Split groups until every map has its group boundaries at the same channel positions."""
        while True:
            cuts = {c for x in maps for c in boundaries(x)}
            target = next(
                (
                    (g, sorted(c - start for c in cuts if start < c < start + g.size))
                    for x in maps
                    for g, start in zip(x.groups, boundaries(x))
                    if any(start < c < start + g.size for c in cuts)
                ),
                None,
            )
            if target is None:
                return
            g, inner = target
            self.split(g, [b - a for a, b in zip([0, *inner], [*inner, g.size])])

    def split(self, g: Group, sizes: list[int]) -> list[Group]:
        """Cut g into parts of these sizes, side by side; each part is a group of its own from now on."""
        g = g.root()
        assert sum(sizes) == g.size and not g.parts
        tied = [pair for pair in self._ties if g in (pair[0].root(), pair[1].root())]
        parts, start = [], 0
        for size in sizes:
            part = self.new_group(size, f"{g.name}[{start}:{start + size}]")
            part.producers = [Producer(p.conv, p.bn, p.offset + start, p.depthwise) for p in g.producers]
            part.consumers = [Consumer(c.conv, c.bn, c.offset + start) for c in g.consumers]
            part.params = [ChannelParam(q.owner, q.attr, q.offset + start) for q in g.params]
            part.frozen_reasons = list(g.frozen_reasons)
            parts.append(part)
            start += size
        g.parts, g.producers, g.consumers, g.params = parts, [], [], []
        if tied:  # equal counts of a half whose parts now count apart: keep the whole split as it is
            self._ties = [pair for pair in self._ties if pair not in tied]
            reason = f"a split half ({g.name}) is split again"
            for a, b in tied:
                for h in (a, b):
                    self.freeze(FeatureMap([h]), reason)
        return parts

    def halves(self, x: FeatureMap, name: str) -> tuple[FeatureMap, FeatureMap]:
        """x.chunk(2, 1) of any tensor: two halves whose channel counts must stay equal."""
        half = (x.channels + 1) // 2  # as torch.chunk cuts an odd count
        for g, start in zip(x.groups, boundaries(x)):
            if start < half < start + g.size:
                self.split(g, [half - start, start + g.size - half])
                break
        groups = x.groups
        cut = next(i for i in range(len(groups) + 1) if sum(g.size for g in groups[:i]) == half)
        left, right = groups[:cut], groups[cut:]
        if [g.size for g in left] == [g.size for g in right]:
            self._ties += [(a, b) for a, b in zip(left, right) if a is not b]
        else:
            self.freeze(x, f"chunked into halves by {name}, and its halves are made of unequal groups")
        return FeatureMap(left), FeatureMap(right)

    def scale(self, x: FeatureMap, owner: nn.Module, attr: str) -> None:
        """owner.attr is a per-channel tensor over x's channels: it is sliced with them."""
        offset = 0
        for g in x.groups:
            g.params.append(ChannelParam(owner, attr, offset))
            offset += g.size

    def freeze(self, x: FeatureMap, reason: str) -> None:
        for g in x.groups:
            if reason not in g.frozen_reasons:
                g.frozen_reasons.append(reason)

    def groups(self) -> list[Group]:
        """Final groups (after merges and splits), with frozen state spread across ties."""
        roots = [g for g in self._groups if g.parent is None and not g.parts]
        for g in roots:
            unranked = [p for p in g.producers if p.bn is None]
            if unranked and not g.frozen_reasons:
                g.frozen_reasons.append(
                    f"written by {self.name(unranked[0].conv)}, a conv without BatchNorm: no gamma ranks its channels"
                )
        for members in self.tie_classes():
            reasons = [r for g in members for r in g.frozen_reasons]
            if reasons:
                for g in members:
                    if not g.frozen_reasons:
                        g.frozen_reasons.append(f"split into equal halves with a frozen group ({reasons[0]})")
        return roots

    def tie_classes(self) -> list[list[Group]]:
        """Groups that must keep equal channel counts (both halves of a chunk/split)."""
        classes: list[list[Group]] = []
        for a, b in self._ties:
            a, b = a.root(), b.root()
            ca = next((c for c in classes if a in c), None)
            cb = next((c for c in classes if b in c), None)
            if ca is not None and cb is not None:
                if ca is not cb:
                    ca += cb
                    classes.remove(cb)
            elif ca is not None:
                ca.append(b)
            elif cb is not None:
                cb.append(a)
            else:
                classes.append([a] if a is b else [a, b])
        return classes
