"""Pruning a module in memory: its channel graph, a plan applied by surgery, a pruned copy at a level."""

from __future__ import annotations

import copy

import torch
from torch import nn

from . import surgery
from .blocks import build_graph, refresh
from .errors import YoloslimError
from .graph import Graph, UnsupportedModuleError
from .plan import MAX_GROUP_RATIO, Plan, make_plan, resolve
from .sparsity import zeroed_share


def graph_of(model: nn.Module) -> Graph:
    try:
        return build_graph(model)
    except UnsupportedModuleError as e:
        raise YoloslimError(str(e)) from None


def prune_in_place(model: nn.Module, graph: Graph, plan: Plan, compensate: bool = True) -> None:
    surgery.apply(model, graph, resolve(graph, plan), compensate=compensate)
    refresh(model)  # the blocks' channel attributes (e.g. C2f.c) follow the sliced convs


def pruned_copy(
    model: nn.Module, ratio: float, min_keep=0.05, round_to: int = 1, max_group_ratio: float = MAX_GROUP_RATIO
) -> tuple[nn.Module, Plan]:
    """model pruned at ratio, as a new module (model is left as it was), and its plan."""
    model = copy.deepcopy(model)
    graph = graph_of(model)
    plan = make_plan(graph, ratio=ratio, min_keep=min_keep, round_to=round_to, max_group_ratio=max_group_ratio)
    prune_in_place(model, graph, plan)
    return model, plan


def zeroed_share_of(model: nn.Module) -> float:
    """The share of a model's prunable channels at zero (importance below sparsity.NEAR_ZERO): how far a prune can
    go and remove only zeros."""
    groups = [g for g in graph_of(model).groups() if not g.frozen_reasons]
    return zeroed_share(torch.cat([g.importance() for g in groups])) if groups else 0.0
