"""Bad inputs get one clear line and exit 2, inputs are never modified, and random plans never break a model."""

import hashlib
import random

import pytest
import torch

from conftest import ALL_CONFIGS, SMALL_CONFIGS, build, tiny_train_args
from yoloslim.blocks import build_graph
from yoloslim.checkpoint import save_checkpoint
from yoloslim.cli import main
from yoloslim.plan import Plan, fingerprint, keep_floor
from yoloslim.prune import prune_in_place


def digest(folder):
    """sha256 of every file under folder: proof that a command left its inputs alone."""
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_data):
    """A folder of good and bad input files, made once."""
    from ultralytics.nn.tasks import ClassificationModel

    d = tmp_path_factory.mktemp("inputs")
    good = save_checkpoint(build("yolov8n.yaml", nc=2), d / "good.pt")
    (d / "text.pt").write_text("these are not weights\n")
    (d / "truncated.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    torch.save({"epoch": 3, "optimizer": None}, d / "nomodel.pt")
    torch.save([1, 2, 3], d / "list.pt")
    save_checkpoint(ClassificationModel("yolov8n-cls.yaml", nc=2, verbose=False), d / "classify.pt")
    from ultralytics.nn.tasks import DetectionModel

    save_checkpoint(DetectionModel("yolov8n-ghost.yaml", nc=2, verbose=False), d / "ghost.pt")
    fused = build("yolov8n.yaml", nc=2).fuse(verbose=False)
    save_checkpoint(fused, d / "fused.pt")
    (d / "broken.yaml").write_text("train: [images/train\nval: images/val\n")
    (d / "empty").mkdir()
    (d / "empty" / "images" / "train").mkdir(parents=True)
    (d / "empty" / "images" / "val").mkdir(parents=True)
    (d / "empty.yaml").write_text(f"path: {d / 'empty'}\ntrain: images/train\nval: images/val\nnames: [bud, leaf]\n")
    (d / "prunedir" / "slim.pt").parent.mkdir()
    (d / "prunedir" / "slim.pt").write_bytes(good.read_bytes())
    return d


# (arguments, a fragment of the one-line message). {d} is the inputs folder.
BAD = [
    ("prune model={d}/missing.pt ratio=0.5", "missing.pt does not exist"),
    ("prune model={d}/text.pt ratio=0.5", "not a readable PyTorch checkpoint (corrupt or truncated?)"),
    ("prune model={d}/truncated.pt ratio=0.5", "not a readable PyTorch checkpoint (corrupt or truncated?)"),
    ("prune model={d}/nomodel.pt ratio=0.5", "checkpoint without a model"),
    ("prune model={d}/list.pt ratio=0.5", "is not an Ultralytics checkpoint"),
    ("prune model={d}/classify.pt ratio=0.5", "ClassificationModel (classification); yoloslim supports detection"),
    ("prune model={d}/fused.pt ratio=0.5", "is fused"),
    ("prune model={d}/ghost.pt ratio=0.5", "is not supported by the pruner"),
    ("prune model={d}/good.pt ratio=0", "ratio=0 is impossible"),
    ("prune model={d}/good.pt ratio=1", "ratio=1 is impossible"),
    ("prune model={d}/good.pt ratio=-0.3", "ratio=-0.3 is impossible"),
    ("prune model={d}/good.pt threshold=100 min_keep=0", "would remove every channel"),
    ("prune model={d}/good.pt ratio=0.5 min_keep=1.5", "min_keep=1.5 is neither"),
    ("prune model={d}/good.pt ratio=0.5 round_to=0", "round_to=0 must be"),
    ("prune model={d}/good.pt ratio=0.5 project={d} name=prunedir", "already holds a slim.pt; pass exist_ok=True"),
    ("prune model={d}/good.pt ratio=0.5 plan={d}/text.pt", "not a yoloslim plan.json"),
    ("prune model={d}/good.pt rate=0.5", "'rate' is not an argument of 'prune'"),
    ("inspect model={d}/truncated.pt", "corrupt or truncated"),
    ("export model={d}/missing.pt", "does not exist"),
    ("export model={d}/good.pt imgsz=100", "not a multiple of the model's stride"),
    ("data check data={d}/missing.yaml", "not found"),
    ("data check data={d}/broken.yaml", "is not valid YAML"),
    ("data check data={d}/empty.yaml", "no images"),
    ("sparse model=yolov8n.yaml data={d}/empty.yaml epochs=1", "no images"),
    ("sparse model=yolov8n.yaml data={d}/missing.yaml sr=-1", "sr=-1 must be a number >= 0"),
    ("train model={d}/truncated.pt data={data}", "corrupt or truncated"),
    ("finetune model=yolov8n.yaml data={data}", "must be a pruned .pt checkpoint"),
    ("finetune model={d}/classify.pt data={data}", "yoloslim supports detection models only"),
    ("pipeline levels=0.5,1.2", "must be prune ratios between 0 and 1"),
    ("pipeline sr_step=1.5", "sr_step=1.5 must be a fraction of the epochs"),
    ("sparse model=yolov8n.yaml data={d}/missing.yaml penalty=l2", "penalty='l2' is not one of wide, lowest, l1"),
    ("compare runs={d}/empty", "has no report.csv"),
    ("data synth out={d}/prunedir", "already exists and is not empty; pass overwrite=True"),
    ("frobnicate", "unknown verb"),
]


@pytest.mark.parametrize("words,message", BAD, ids=[b[0].split(" {")[0] + " " + b[1][:30] for b in BAD])
def test_bad_input_is_one_clear_line(inputs, tiny_data, words, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the repository either
    before = digest(inputs), digest(tiny_data.parent)
    argv = words.format(d=inputs, data=tiny_data).split()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("yoloslim: error: ") and message in err, err
    assert "Traceback" not in err
    assert (digest(inputs), digest(tiny_data.parent)) == before
    assert not any(tmp_path.rglob("*.pt")) and not any(inputs.rglob("*.tmp*"))


def test_verbose_shows_the_traceback(inputs, capsys):
    assert main(["prune", f"model={inputs}/truncated.pt", "ratio=0.5", "verbose=True"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_successful_verbs_leave_their_inputs_alone(inputs, tiny_data, tmp_path):
    before = digest(inputs), digest(tiny_data.parent)
    run = tiny_train_args(tmp_path, batch=4)
    common = " ".join(f"{k}={v}" for k, v in run.items())
    assert main(["prune", f"model={inputs}/good.pt", "ratio=0.5", f"project={tmp_path}", "name=p"]) == 0
    assert main(["inspect", f"model={inputs}/good.pt"]) == 0
    assert main(["export", f"model={inputs}/good.pt", "imgsz=64", f"out={tmp_path}/good.onnx", "runs=0"]) == 0
    assert main(["sparse", f"model={inputs}/good.pt", f"data={tiny_data}", "name=s", *common.split()]) == 0
    assert main(["finetune", f"model={tmp_path}/p/slim.pt", f"data={tiny_data}", "name=f", *common.split()]) == 0
    assert (digest(inputs), digest(tiny_data.parent)) == before


def random_plan(graph, rng: random.Random, min_keep=1) -> Plan:
    """Any kept count >= min_keep per prunable group, equal across tied halves, random channel indices."""
    groups = [g for g in graph.groups() if not g.frozen]
    counts = {g.name: rng.randint(keep_floor(g.size, min_keep), g.size) for g in groups}
    for members in graph.tie_classes():
        live = [g for g in members if g.name in counts]  # frozen halves freeze their twins: none or all live
        if live:
            n = min(counts[g.name] for g in live)
            counts.update({g.name: n for g in live})
    kept = {g.name: sorted(rng.sample(range(g.size), counts[g.name])) for g in groups}
    return Plan(kept, {g.name: g.size for g in groups}, fingerprint(graph), {"fuzz": True})


@pytest.mark.parametrize("cfg", ALL_CONFIGS)
def test_random_plans_give_working_models(cfg):
    rng = random.Random(cfg)
    x = torch.rand(1, 3, 64, 64)
    for trial in range(2):
        model = build(cfg, seed=trial)
        graph = build_graph(model)
        prune_in_place(model, graph, random_plan(graph, rng, min_keep=rng.choice([1, 0.05, 0.5])))
        with torch.no_grad():
            y, preds = model(x)
        anchors = 8 * 8 + 4 * 4 + 2 * 2  # strides 8, 16, 32 at 64 px
        assert y.shape == (1, 4 + model.model[-1].nc, anchors) and torch.isfinite(y).all()
        assert preds["boxes"].shape[1] == 4 * model.model[-1].reg_max
        build_graph(model)  # the pruned model is a valid input again (it can be pruned further)


@pytest.mark.parametrize("cfg", SMALL_CONFIGS)
def test_random_plan_sample_exports_and_matches_onnxruntime(cfg, tmp_path):
    from yoloslim.export import export_checked

    model = build(cfg, seed=7)
    graph = build_graph(model)
    prune_in_place(model, graph, random_plan(graph, random.Random(cfg), min_keep=1))
    onnx, report = export_checked(save_checkpoint(model, tmp_path / "fuzz.pt"), imgsz=64, runs=0)
    assert onnx.exists() and max(report["max_diff"].values()) < 1e-3
