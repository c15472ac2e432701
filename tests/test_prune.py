"""Pruning is proven by equivalence: channels with zero gamma and beta, once removed, change nothing."""

import copy
import hashlib
import json
import subprocess
import sys

import pytest
import torch
from helpers import EVERY_CONFIG, SMALL_CONFIGS, build, calibrate, fast_only, raw_outputs, rel_err

from yoloslim import YoloslimError
from yoloslim.blocks import build_graph
from yoloslim.plan import Plan, make_plan
from yoloslim.pruning import prune
from yoloslim.seeded import mask_random_channels, prune_masked
from yoloslim.slimming import prune_in_place


@pytest.mark.parametrize("cfg", EVERY_CONFIG)
def test_removing_masked_channels_keeps_outputs(cfg, image):
    model = build(cfg)
    graph = build_graph(model)
    chosen = mask_random_channels(graph, seed=1)
    calibrate(model)  # statistics of the masked model, so its outputs still depend on the input
    before = raw_outputs(model, image)
    params_before = sum(p.numel() for p in model.parameters())

    kept = prune_masked(model, graph)

    assert rel_err(raw_outputs(model, image), before) < 1e-4
    assert rel_err(raw_outputs(model, image * 0.3), before) > 1e-2  # the match is not a constant output
    for g, removed in chosen.items():
        assert sorted(set(range(g.size)) - set(kept[g])) == removed, g.name
        for p in g.producers:  # every writer of the group really lost those channels
            assert p.conv.out_channels >= len(kept[g])
    assert sum(p.numel() for p in model.parameters()) < params_before


@pytest.mark.parametrize("cfg", fast_only("yolov8n.yaml", SMALL_CONFIGS))
def test_models_from_ultralytics_pt_files(cfg, image, tmp_path):
    from ultralytics import YOLO

    from yoloslim.checkpoint import load_model

    yolo = YOLO(cfg)
    yolo.model = build(cfg, seed=7)
    yolo.save(tmp_path / "user.pt")
    model = load_model(tmp_path / "user.pt")
    graph = build_graph(model)
    mask_random_channels(graph, seed=8)
    before = raw_outputs(model, image)
    prune_masked(model, graph)
    assert rel_err(raw_outputs(model, image), before) < 1e-4


GROUP_KINDS = {
    "residual": lambda g: sum(not p.depthwise for p in g.producers) > 1,
    "split-half": lambda g: "[" in g.name,
    "concat": lambda g: len({id(c.conv) for c in g.consumers}) > 1,
    "sppf": lambda g: len(g.consumers) > len({id(c.conv) for c in g.consumers}),
    "depthwise": lambda g: any(p.depthwise for p in g.producers),
    "detect-hidden": lambda g: ".cv2." in g.name or ".cv3." in g.name,
}


@pytest.mark.parametrize("kind", GROUP_KINDS)
@pytest.mark.parametrize("cfg", SMALL_CONFIGS)
def test_each_coupling_kind_alone(cfg, kind, image):
    model = build(cfg, seed=2)
    graph = build_graph(model)
    select = GROUP_KINDS[kind]
    if not any(select(g) for g in graph.groups() if not g.frozen_reasons):
        pytest.skip(f"{cfg} has no {kind} group")
    chosen = mask_random_channels(graph, seed=3, select=select)
    before = raw_outputs(model, image)
    kept = prune_masked(model, graph)
    assert rel_err(raw_outputs(model, image), before) < 1e-4
    assert all(len(kept[g]) == g.size - len(r) for g, r in chosen.items())


@pytest.mark.parametrize("cfg", SMALL_CONFIGS)
def test_compensation_folds_removed_constants(cfg):
    """Folding is exact for 1x1 consumers and interior pixels, approximate at zero-padded borders of kxk convs:
    so the mean error over a 256 px image, where borders are a minority, must drop far below unfolded."""
    image = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(123))
    model = build(cfg, seed=4)
    graph = build_graph(model)
    mask_random_channels(graph, seed=5, keep_beta=True)  # removed channels still emit act(beta)
    before = raw_outputs(model, image)
    plan = make_plan(graph, threshold=1e-6, min_keep=0, max_group_ratio=1)  # no floor: exactly the zeros

    plain = copy.deepcopy(model)
    prune_in_place(plain, build_graph(plain), plan, compensate=False)
    prune_in_place(model, graph, plan, compensate=True)

    err_plain = float((raw_outputs(plain, image) - before).abs().mean())
    err_folded = float((raw_outputs(model, image) - before).abs().mean())
    assert err_folded < 0.15 * err_plain, (err_folded, err_plain)


def test_frozen_groups_say_why():
    graph = build_graph(build("yolo11n.yaml"))
    reasons = {g.name: g.frozen_reasons for g in graph.groups() if g.frozen_reasons}
    assert any("attention" in r[0] for n, r in reasons.items() if n.startswith("model.10.")), reasons
    assert all("output" in reasons[f"model.23.cv{h}.{i}.2"][0] for h in (2, 3) for i in range(3))
    # C2PSA's halves stay equal; the attention half is frozen, so the other is too
    assert any("equal halves" in r[0] for r in reasons.values())


def test_plan_options_are_respected():
    graph = build_graph(build("yolov8n.yaml"))
    plan = make_plan(graph, ratio=0.5, min_keep=4, round_to=8)
    for name, kept in plan.kept.items():
        size = plan.sizes[name]
        assert len(kept) >= min(4, size)
        assert len(kept) % 8 == 0 or len(kept) == size, (name, len(kept))
    for members in graph.tie_classes():
        assert len({len(plan.kept[g.name]) for g in members}) == 1
    loose = make_plan(graph, ratio=0.5, min_keep=0)
    # equal halves keep the larger of their two counts, so slightly less than the ratio goes
    assert 0.45 < loose.removed / loose.prunable <= 0.5
    with pytest.raises(YoloslimError, match="ratio"):
        make_plan(graph, ratio=1.0)
    with pytest.raises(YoloslimError, match="every channel"):
        make_plan(graph, threshold=10.0, min_keep=0, max_group_ratio=1)
    capped = make_plan(graph, threshold=10.0, min_keep=0)  # the default cap: no group loses more than 80%
    assert all(len(k) >= 0.2 * capped.sizes[n] - 1e-9 for n, k in capped.kept.items())
    assert any(len(k) <= 0.2 * capped.sizes[n] + 1 for n, k in capped.kept.items())


def test_plan_json_reapplies_to_same_weights(tmp_path):
    model = build("yolov8n.yaml")
    twin = copy.deepcopy(model)
    graph = build_graph(model)
    plan = make_plan(graph, ratio=0.4)
    plan.save(tmp_path / "plan.json")
    assert json.loads((tmp_path / "plan.json").read_text())["groups"]
    prune_in_place(model, graph, plan)
    prune_in_place(twin, build_graph(twin), Plan.load(tmp_path / "plan.json"))
    a, b = model.state_dict(), twin.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    other = build("yolov5n.yaml")
    with pytest.raises(YoloslimError, match="different architecture"):
        prune_in_place(other, build_graph(other), plan)


def test_unknown_module_is_named_with_its_layer():
    from ultralytics.nn.modules.block import C2f

    class MyC2f(C2f):
        pass

    model = build("yolov8n.yaml")
    old = model.model[4]
    new = MyC2f(old.cv1.conv.in_channels, old.cv2.conv.out_channels, n=len(old.m), shortcut=True)
    new.f, new.i, new.type = old.f, old.i, "MyC2f"
    model.model[4] = new
    with pytest.raises(YoloslimError, match=r"layer 4 .*MyC2f is not supported"):
        prune(model, ratio=0.5, save=False, verbose=False)


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow  # a child process
def test_slim_checkpoint_loads_in_stock_ultralytics(tmp_path):
    """A .pt written by Ultralytics itself goes in; the slim.pt comes out and loads, predicts and
    exports in a process that never imports yoloslim."""
    from ultralytics import YOLO

    source = tmp_path / "user.pt"
    yolo = YOLO("yolov8n.yaml")
    yolo.model = build("yolov8n.yaml")
    yolo.save(source)
    digest = sha(source)

    result = prune(str(source), ratio=0.5, project=tmp_path, name="run", verbose=False)
    assert sha(source) == digest  # input untouched
    for f in ("slim.pt", "plan.json", "layers.csv", "channels.png"):
        assert (result.save_dir / f).stat().st_size > 0
    n_slim = sum(p.numel() for p in result.model.parameters())

    script = f"""
import sys
from ultralytics import YOLO
from ultralytics.utils import ASSETS
m = YOLO(r"{result.slim}")
assert sum(p.numel() for p in m.model.parameters()) == {n_slim}
r = m.predict(ASSETS / "bus.jpg", imgsz=128, verbose=False)
f = m.export(format="onnx", imgsz=128)
assert "yoloslim" not in sys.modules
print("OK", len(r), f)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and "OK 1" in out.stdout, out.stderr[-2000:]


@pytest.mark.slow  # child processes; the bad-input cases run the CLI in process
def test_cli_prune_and_inspect(tmp_path):
    from yoloslim.checkpoint import save_checkpoint

    source = save_checkpoint(build("yolo11n.yaml"), tmp_path / "in.pt")
    digest = sha(source)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "yoloslim.cli",
            "prune",
            f"model={source}",
            "ratio=0.3",
            f"project={tmp_path}",
            "name=cli",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "pruned" in run.stdout and (tmp_path / "cli" / "slim.pt").is_file()
    assert sha(source) == digest
    run = subprocess.run(
        [sys.executable, "-m", "yoloslim.cli", "inspect", f"model={tmp_path / 'cli' / 'slim.pt'}"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0 and "frozen: attention" in run.stdout, run.stderr[-2000:]
    bad = subprocess.run(
        [sys.executable, "-m", "yoloslim.cli", "prune", f"model={source}", "ratio=1.5"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "ratio=1.5 is impossible" in bad.stderr and "Traceback" not in bad.stderr
