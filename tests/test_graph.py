"""The core graph's own operations on plain torch convs (no Ultralytics): merges, splits, halves, scales."""

import torch
from torch import nn

from yoloslim.graph import FeatureMap, Graph


def conv(c1, c2, groups=1):
    return nn.Conv2d(c1, c2, 1, groups=groups, bias=False), nn.BatchNorm2d(c2)


def test_an_add_across_a_group_splits_it_into_parts():
    """x (one group of 8) + cat(y, dw(y)) (one group of 4, twice): x's two halves become y's group."""
    root = nn.ModuleList([nn.Sequential(*conv(3, 8)), nn.Sequential(*conv(8, 4)), nn.Sequential(*conv(4, 4, 4))])
    graph = Graph(root)
    x = graph.conv(*root[0], graph.untraced(3))
    y = graph.conv(*root[1], x)
    z = graph.conv(*root[2], y)  # depthwise: y's channels again
    out = graph.add(x, FeatureMap(y.groups + z.groups))
    groups = [g for g in graph.groups() if not g.frozen_reasons]
    assert len(groups) == 1 and groups[0].size == 4
    assert out.groups == [groups[0], groups[0]]
    offsets = sorted(p.offset for p in groups[0].producers if p.conv is root[0][0])
    assert offsets == [0, 4]  # the first conv's channels j and 4 + j go together


def test_halves_tie_equal_parts_and_freeze_unequal_ones():
    root = nn.ModuleList([nn.Sequential(*conv(3, 8)), nn.Sequential(*conv(3, 6)), nn.Sequential(*conv(3, 2))])
    graph = Graph(root)
    image = graph.untraced(3)
    left, right = graph.halves(graph.conv(*root[0], image), "chunk")
    assert [g.size for g in left.groups] == [4] and [g.size for g in right.groups] == [4]
    assert any({left.groups[0], right.groups[0]} == set(c) for c in graph.tie_classes())
    mixed = FeatureMap(graph.conv(*root[1], image).groups + graph.conv(*root[2], image).groups)  # 6 + 2
    graph.halves(mixed, "chunk2")
    assert all(g.frozen_reasons for g in mixed.groups)  # 4 | 2 + 2: no group-wise tie says the counts stay equal


def test_splitting_a_tied_half_freezes_its_tie():
    root = nn.ModuleList([nn.Sequential(*conv(3, 8)), nn.Sequential(*conv(3, 2)), nn.Sequential(*conv(3, 2))])
    graph = Graph(root)
    image = graph.untraced(3)
    a, b = graph.conv(*root[0], image, parts=2).parts()  # tied halves of 4
    graph.add(a, FeatureMap(graph.conv(*root[1], image).groups + graph.conv(*root[2], image).groups))
    assert all(g.frozen_reasons for g in graph.groups() if g.size and g.producers and g.name != "input")


def test_a_channel_param_follows_its_group_through_splits():
    root = nn.ModuleList([nn.Sequential(*conv(3, 4))])
    root.scale = nn.Parameter(torch.arange(4.0))
    graph = Graph(root)
    x = graph.conv(*root[0], graph.untraced(3))
    graph.scale(x, root, "scale")
    parts = graph.split(x.groups[0], [1, 3])
    assert [(q.owner is root, q.attr, q.offset) for p in parts for q in p.params] == [
        (True, "scale", 0),
        (True, "scale", 1),
    ]
