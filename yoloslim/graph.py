"""Channel graph: which output channels of which layers must be removed together.

A *group* is one channel space: a set of producers (conv+BN layers whose output channels
[offset, offset + size) are this space) and consumers (convs that read it at some input offset).
Channel j of a group is one channel everywhere: removing it removes output channel j of every
producer and the matching input channel of every consumer. Residual adds merge groups; a split
into equal halves *ties* groups (they must keep equal counts); concats only place groups side by
side. Groups that must not change carry the reasons why (frozen).

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
class Group:
    size: int
    name: str
    producers: list[Producer] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)
    frozen_reasons: list[str] = field(default_factory=list)  # why it must not change; empty: prunable
    parent: Group | None = None

    def root(self) -> Group:
        g = self
        while g.parent is not None:
            g = g.parent
        return g

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
        return [g.root() for g in self._groups]

    @property
    def channels(self) -> int:
        return sum(g.size for g in self._groups)

    def parts(self) -> list[FeatureMap]:
        return [FeatureMap([g]) for g in self._groups]


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
        ga, gb = a.groups, b.groups
        if [g.size for g in ga] != [g.size for g in gb]:
            raise ValueError(
                f"residual add of differently split tensors {[g.size for g in ga]} and "
                f"{[g.size for g in gb]} is not supported"
            )
        for keep, gone in zip(ga, gb):
            if keep is not gone:
                keep.producers += gone.producers
                keep.consumers += gone.consumers
                keep.frozen_reasons += gone.frozen_reasons
                gone.parent = keep
        return a

    def freeze(self, x: FeatureMap, reason: str) -> None:
        for g in x.groups:
            if reason not in g.frozen_reasons:
                g.frozen_reasons.append(reason)

    def groups(self) -> list[Group]:
        """Final groups (after merges), with frozen state spread across ties."""
        roots = [g for g in self._groups if g.parent is None]
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
