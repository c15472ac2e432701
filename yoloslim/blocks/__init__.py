"""How each Ultralytics block couples its channels: one small file per block family.

A handler traces one module: given the graph and the input FeatureMap(s), it registers the module's
convs as producers/consumers and returns the output FeatureMap. A refresher updates the attributes
a block's stock forward reads (e.g. C2f.c) after its convs were sliced. Handlers are looked up by
exact class, so a subclass with a different forward is never guessed at.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..graph import Graph, UnsupportedModuleError

HANDLERS: dict[type, Callable] = {}
REFRESHERS: dict[type, Callable] = {}


def handles(*classes: type):
    def register(fn):
        for cls in classes:
            HANDLERS[cls] = fn
        return fn

    return register


def refreshes(*classes: type):
    def register(fn):
        for cls in classes:
            REFRESHERS[cls] = fn
        return fn

    return register


def trace(graph: Graph, module: nn.Module, x):
    handler = HANDLERS.get(type(module))
    if handler is None:
        raise UnsupportedModuleError(graph.name(module), type(module).__name__)
    return handler(graph, module, x)


def refresh(model: nn.Module) -> None:
    for m in model.modules():
        fn = REFRESHERS.get(type(m))
        if fn is not None:
            fn(m)


def build_graph(model: nn.Module) -> Graph:
    """Trace an Ultralytics Detection (Segmentation, Pose, OBB) model layer by layer, following each layer's `f`."""
    graph = Graph(model)
    outputs: list = []
    x = graph.untraced(model.yaml.get("ch", 3) if isinstance(getattr(model, "yaml", None), dict) else 3)
    for layer in model.model:
        f = layer.f
        if isinstance(f, int):
            inp = x if f == -1 else outputs[f]
        else:
            inp = [x if j == -1 else outputs[j] for j in f]
        try:
            x = trace(graph, layer, inp)
        except UnsupportedModuleError as e:
            raise UnsupportedModuleError(f"layer {layer.i} ({e.where})", e.cls) from None
        outputs.append(x)
    return graph


# Register the handlers (imports at the end: they use `handles`/`refreshes` from this module).
from . import core, ghost, tasks, v3, v5, v6, v8, v9, v10, v11, v12  # noqa: E402,F401
