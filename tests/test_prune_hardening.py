"""prune, budgets, sweep, compare and checkpoint loading (issue 30): each class of bad input is one line and writes
nothing, an interrupted prune leaves a whole set of outputs or none, and what a verb ignores or cannot reach it
says."""

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import build, fast_only

import yoloslim
from yoloslim import YoloslimError
from yoloslim.blocks import build_graph
from yoloslim.checkpoint import model_from_yaml, save_checkpoint
from yoloslim.cli import main
from yoloslim.plan import make_plan


def tree(folder):
    """Every path under folder with its sha256 (files) or None (folders)."""
    folder = Path(folder)
    return {
        p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
        if p.suffix != ".cache"  # Ultralytics' label cache beside a dataset's labels
    }


def one_line(argv, message, capsys, *unchanged):
    """The CLI answers argv with exit 2 and one 'yoloslim: error:' line holding message; the folders `unchanged`
    (inputs and outputs) are as they were: nothing modified, added or left behind."""
    before = [tree(f) for f in unchanged]
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("yoloslim: error: ") and message in err, err
    assert [tree(f) for f in unchanged] == before
    return err


def warnings(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("warning:")]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return save_checkpoint(build("yolov8n.yaml", nc=2), tmp_path_factory.mktemp("good") / "good.pt")


# --- budgets the unpruned model already meets ------------------------------------------------------------------


SLOW_LATENCY = pytest.param("latency_ms=1e6", marks=pytest.mark.slow)  # measures the unpruned model's latency


@pytest.mark.parametrize("budget", ["gflops=1000", "params=1e9", SLOW_LATENCY, "speedup=1"])
def test_a_budget_the_model_already_meets_prunes_nothing(good, budget, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["prune", f"model={good}", budget, "imgsz=64", f"project={tmp_path}", "name=p"]
    one_line(argv, "the unpruned model is already within it", capsys, tmp_path, good.parent)
    assert not (tmp_path / "p").exists()


def test_a_drop_limit_needs_a_model_that_scores():
    from yoloslim.levels import meaningless_drop

    assert "scores mAP50-95 0.0040" in meaningless_drop(0.004, 0.01)
    assert "every level meets it" in meaningless_drop(0.3, 0.3)
    assert meaningless_drop(0.3, 0.01) is None


def test_max_drop_on_a_model_that_scores_nothing_is_refused(good, tiny_data, tmp_path, capsys):
    argv = ["prune", f"model={good}", "max_drop=0.01", f"data={tiny_data}", "imgsz=64", "val_imgsz=64"]
    one_line([*argv, f"project={tmp_path}"], "max_drop=0.01 cannot choose a level: the unpruned model scores", capsys)
    assert not any(tmp_path.iterdir())


@pytest.mark.slow  # two validations and a plot
def test_sweep_on_a_model_that_scores_nothing_has_no_knee(good, tiny_data, tmp_path, capsys):
    table = yoloslim.sweep(good, data=tiny_data, levels="0.5", imgsz=64, runs=0, project=tmp_path, name="s")
    assert not table.knee.any() and not pd.read_csv(tmp_path / "s" / "sweep.csv").knee.any()
    assert any("no knee: the unpruned model scores mAP50-95" in w for w in warnings(capsys.readouterr().out))


# --- model and data that validation cannot compare ---------------------------------------------------------------


@pytest.fixture(scope="module")
def pose_data(tmp_path_factory):
    from yoloslim.data import synth

    return synth(tmp_path_factory.mktemp("pose") / "pose", train=4, val=4, imgsz=64, seed=0, task="pose")


@pytest.mark.parametrize("verb", ["sweep levels=0.5 runs=0", "prune max_drop=0.01 val_imgsz=64"])
@pytest.mark.parametrize(
    "cfg,data,message",
    [
        ("yolov8n-pose.yaml", "pose", "the model's keypoints are kpt_shape [17, 3], the data's [3, 3]"),
        ("yolov8n.yaml", "detect", "the model detects 80 classes, data= has 2"),
    ],
)
def test_a_model_its_data_cannot_validate_is_one_line(cfg, data, message, verb, pose_data, tiny_data, tmp_path, capsys):
    weights = save_checkpoint(build(cfg), tmp_path / "in" / "m.pt")
    dataset = pose_data if data == "pose" else tiny_data
    words = verb.split()
    argv = [words[0], f"model={weights}", f"data={dataset}", "imgsz=64", *words[1:], f"project={tmp_path}", "name=o"]
    one_line(argv, message, capsys, tmp_path, dataset.parent)


# --- plans of another model --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "made_for,message",
    [
        ("yolov8s.yaml", "channel groups differ, e.g. model.0.conv: 32 channels in the plan, 16 here"),
        ("yolo11n.yaml", "the plan was made for a different architecture"),
        ("yolov8n.yaml", "channel groups differ"),  # 80 classes: the head's class branch is wider
    ],
)
def test_a_plan_for_another_model_is_one_line(good, made_for, message, tmp_path, capsys):
    plan = make_plan(build_graph(build(made_for)), ratio=0.5)
    plan.save(tmp_path / "plan.json")
    argv = ["prune", f"model={good}", f"plan={tmp_path / 'plan.json'}", f"project={tmp_path}", "name=o"]
    one_line(argv, message, capsys, tmp_path, good.parent)


@pytest.mark.parametrize(
    "part,edit,message",
    [
        ("group", lambda g: g.update(kept=[*g["kept"], g["size"]]), "are empty, repeated or out of 0.."),
        ("group", lambda g: g.update(kept=["a"]), "must be whole numbers"),
        ("group", lambda g: g.update(kept=[]), "are empty, repeated or out of 0.."),
        ("group", lambda g: g.update(kept=[0, 0]), "are empty, repeated or out of 0.."),
        ("file", lambda d: d.update(groups=[]), "is not a yoloslim plan.json"),
        ("file", lambda d: d.update(groups={}), "the plan prunes no channel group or is damaged"),
        ("file", lambda d: d.update(settings=[1]), "the plan prunes no channel group or is damaged"),
        ("file", lambda d: [1, 2], "is not a yoloslim plan.json"),
        ("folder", None, "is a folder; give the plan.json in it"),
    ],
)
def test_a_damaged_plan_is_one_line(good, part, edit, message, tmp_path, capsys):
    """Damage to one group of a plan.json, to the whole file, or a folder given for it."""
    import json

    plan = make_plan(build_graph(build("yolov8n.yaml", nc=2)), ratio=0.5)
    plan.save(tmp_path / "plan.json")
    data = json.loads((tmp_path / "plan.json").read_text())
    if part == "group":
        edit(next(iter(data["groups"].values())))
    elif part == "file":
        data = edit(data) or data
    (tmp_path / "plan.json").write_text(json.dumps(data))
    where = tmp_path if part == "folder" else tmp_path / "plan.json"
    argv = ["prune", f"model={good}", f"plan={where}", f"project={tmp_path}", "name=o"]
    one_line(argv, message, capsys, tmp_path, good.parent)


def test_a_plan_is_not_replaced_by_the_prune_that_applies_it(good, tmp_path, capsys):
    yoloslim.prune(good, ratio=0.5, imgsz=64, project=tmp_path, name="p", verbose=False)
    argv = ["prune", f"model={good}", f"plan={tmp_path / 'p' / 'plan.json'}", f"project={tmp_path}", "name=p"]
    one_line([*argv, "exist_ok=True"], "refusing to overwrite the input", capsys, tmp_path)


# --- checkpoints of other code -----------------------------------------------------------------------------------


def old_yolo12(path):
    """yolo12n as Ultralytics 8.3.x pickled it: each AAttn with separate qk and v convs instead of qkv."""
    from ultralytics.nn.modules import Conv
    from ultralytics.nn.modules.block import AAttn

    model = model_from_yaml("yolo12n.yaml")
    for m in model.modules():
        if isinstance(m, AAttn):
            dim = m.qkv.conv.in_channels
            del m.qkv
            m.qk, m.v = Conv(dim, m.all_head_dim * 2, 1, act=False), Conv(dim, m.all_head_dim, 1, act=False)
    return save_checkpoint(model, path)


def yolov5_repo(path, importable: bool):
    """A checkpoint pickled from the class models.yolo.DetectionModel of a yolov5 clone (a temporary package),
    which is then made unimportable (importable=False) or left on sys.path, as when run inside the clone."""
    repo = path.parent / "yolov5"
    (repo / "models").mkdir(parents=True)
    (repo / "models" / "__init__.py").write_text("")
    (repo / "models" / "yolo.py").write_text(
        "import torch\nclass DetectionModel(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.conv = torch.nn.Conv2d(3, 8, 3)\n"
    )
    sys.path.insert(0, str(repo))
    try:
        from models.yolo import DetectionModel

        torch.save({"model": DetectionModel(), "epoch": 10}, path)
    finally:
        if not importable:
            sys.path.remove(str(repo))
            for name in [m for m in sys.modules if m == "models" or m.startswith("models.")]:
                del sys.modules[name]
    return path


def missing_class(path):
    """A checkpoint holding a module whose class this Ultralytics does not have (saved by a newer one)."""
    from ultralytics.nn.modules import block

    path.parent.mkdir(parents=True)

    class C9k(torch.nn.Module):
        pass

    C9k.__module__, C9k.__qualname__ = block.__name__, "C9k"
    block.C9k = C9k
    try:
        model = build("yolov8n.yaml", nc=2)
        model.model[2].extra = C9k()
        torch.save({"model": model}, path)
    finally:
        del block.C9k
    return path


def missing_attribute(path):
    path.parent.mkdir(parents=True)
    model = build("yolov8n.yaml", nc=2)
    del model.model[2].cv2  # a C2f of another layout: its forward needs cv2
    torch.save({"model": model}, path)
    return path


def misfit(path):
    path.parent.mkdir(parents=True)
    model = build("yolov8n.yaml", nc=2)
    model.model[1].conv = torch.nn.Conv2d(7, model.model[1].conv.out_channels, 3, 2, 1, bias=False)
    torch.save({"model": model}, path)
    return path


def edited(change):
    """A checkpoint of a seeded yolov8n changed by change(model): a damaged or hand-edited one."""

    def make(path):
        path.parent.mkdir(parents=True)
        model = build("yolov8n.yaml", nc=2)
        with torch.no_grad():
            change(model)
        return save_checkpoint(model, path)

    return make


CHECKPOINTS = {
    "yolo12-8.3": (old_yolo12, "is an AAttn of Ultralytics 8.3.x (separate qk and v convs, not qkv)"),
    "yolov5-repo": (lambda p: yolov5_repo(p, False), "that is not the yolov5 repository's model"),
    "yolov5-clone": (lambda p: yolov5_repo(p, True), "that is not the yolov5 repository's model"),
    "newer-class": (missing_class, "was saved with classes this Ultralytics"),
    "other-layout": (missing_attribute, "does not run on the installed Ultralytics"),
    "misfit": (misfit, "does not run: its layers do not fit together"),
    "nan-gamma": (edited(lambda m: m.model[2].cv1.bn.weight.fill_(float("nan"))), "has NaN or infinite values in"),
    "inf-weight": (edited(lambda m: m.model[4].m[0].cv1.conv.weight.fill_(float("inf"))), "NaN or infinite values"),
    "nan-statistics": (edited(lambda m: m.model[3].bn.running_var.fill_(float("nan"))), "values in its running_var"),
    "no-stride": (edited(lambda m: delattr(m, "stride")), "has no valid stride"),
}


@pytest.mark.parametrize("kind", CHECKPOINTS)
def test_checkpoints_of_other_code_say_what_they_are(kind, tmp_path, capsys, monkeypatch, tiny_data):
    make, message = CHECKPOINTS[kind]
    weights = make(tmp_path / "in" / "w.pt")
    monkeypatch.chdir(tmp_path)
    try:
        for verb in (["prune", "ratio=0.3"], ["inspect"], ["export", "imgsz=64"], ["sweep", f"data={tiny_data}"]):
            one_line([verb[0], f"model={weights}", *verb[1:]], message, capsys, tmp_path)
    finally:
        sys.path[:] = [p for p in sys.path if not p.startswith(str(tmp_path))]
        for name in [m for m in sys.modules if m == "models" or m.startswith("models.")]:
            del sys.modules[name]


# --- what a prune leaves: all its files or none, and a usable result without files --------------------------------


def test_an_output_set_is_moved_in_whole_or_not_at_all(tmp_path):
    from yoloslim.io import output_set, owned

    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "b.txt").write_text("old b")
    (tmp_path / ".yoloslim-partial-stale").mkdir()  # left by a run that was killed
    with pytest.raises(KeyboardInterrupt), owned(tmp_path), output_set(tmp_path, last="a.txt") as staging:
        (staging / "b.txt").write_text("new b")
        raise KeyboardInterrupt  # Ctrl-C before the set is complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    assert (tmp_path / "b.txt").read_text() == "old b"
    with owned(tmp_path), output_set(tmp_path, last="a.txt") as staging:
        (staging / "a.txt").write_text("new a")
        (staging / "b.txt").write_text("new b")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"a.txt": "new a", "b.txt": "new b"}


@pytest.mark.slow  # child processes
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_prune_leaves_the_old_set_or_nothing(sig, tmp_path):
    """Interrupted while writing its files: a new folder is left empty (removed), an earlier prune's set stays
    whole. (Interrupted before writing, it has written nothing yet.)"""
    source = save_checkpoint(build("yolov8s.yaml", nc=2), tmp_path / "in.pt")  # s: the plot takes a while
    yoloslim.prune(source, ratio=0.3, project=tmp_path, name="old", verbose=False)
    old = tree(tmp_path / "old")
    for name, extra in (("new", []), ("old", ["exist_ok=True"])):
        argv = [sys.executable, "-m", "yoloslim.cli", "prune", f"model={source}", "ratio=0.6"]
        child = subprocess.Popen(
            [*argv, f"project={tmp_path}", f"name={name}", *extra], stderr=subprocess.PIPE, text=True
        )
        deadline = time.time() + 120
        while not list(tmp_path.glob(f"{name}/.yoloslim-partial-*/*")) and time.time() < deadline:
            time.sleep(0.01)  # until it is writing its set
        child.send_signal(sig)
        _, err = child.communicate(timeout=120)
        assert child.returncode in (130, 143) and "Traceback" not in err, err
        assert not (tmp_path / "new").exists()
        assert tree(tmp_path / "old") == old


@pytest.mark.slow
def test_a_result_without_files_stays_usable(good, tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for kwargs in ({"save": False}, {"dry_run": True}):
        result = yoloslim.prune(good, ratio=0.5, imgsz=64, verbose=False, **kwargs)
        assert result.slim is None
        yolo = result.yolo
        onnx = Path(yolo.export(format="onnx", imgsz=64))
        assert onnx == Path("slim.onnx") and onnx.stat().st_size > 0
        onnx.unlink()
        assert len(yolo.predict(str(tiny_data.parent / "images" / "val"), imgsz=64, verbose=False)) == 8
        metrics = yolo.val(data=str(tiny_data), imgsz=64, batch=8, plots=False, project=str(tmp_path / "v"))
        assert 0 <= metrics.box.map <= 1


# --- what prune ignores, cannot reach, and the trainer it names ---------------------------------------------------


@pytest.mark.parametrize(
    "args,ignored",
    [
        (["plan={plan}", "round_to=8"], ["round_to=8"]),
        (["plan={plan}", "min_keep=0.2", "max_group_ratio=0.5"], ["min_keep=0.2", "max_group_ratio=0.5"]),
        (["ratio=0.3", "val_imgsz=64"], ["val_imgsz=64"]),
        (["ratio=0.3", "data={data}"], ["data="]),
        (["ratio=0.3", "dry_run=True", "name=x", "exist_ok=True"], ["project=", "name=x", "exist_ok=True"]),
        (["ratio=0.3", "round_to=8"], []),
    ][:1]
    + [
        pytest.param(*case, marks=pytest.mark.slow)
        for case in [
            (["plan={plan}", "min_keep=0.2", "max_group_ratio=0.5"], ["min_keep=0.2", "max_group_ratio=0.5"]),
            (["ratio=0.3", "val_imgsz=64"], ["val_imgsz=64"]),
            (["ratio=0.3", "data={data}"], ["data="]),
            (["ratio=0.3", "dry_run=True", "name=x", "exist_ok=True"], ["project=", "name=x", "exist_ok=True"]),
            (["ratio=0.3", "round_to=8"], []),
        ]
    ],
)
def test_each_ignored_argument_gets_one_line(good, tiny_data, args, ignored, tmp_path, capsys):
    plan = tmp_path / "plan.json"
    make_plan(build_graph(build("yolov8n.yaml", nc=2)), ratio=0.3).save(plan)
    argv = [a.format(plan=plan, data=tiny_data) for a in args]
    assert main(["prune", f"model={good}", *argv, "imgsz=64", f"project={tmp_path}"]) == 0
    said = [w for w in warnings(capsys.readouterr().out) if "is ignored" in w]
    assert len(said) == len(ignored) and all(any(i in w for w in said) for i in ignored), said


@pytest.mark.parametrize(
    "args,reached",
    [
        (["ratio=0.95"], False),
        (["threshold=0.9"], False),
        (["ratio=0.5", "min_keep=0.6"], False),
        (["ratio=0.3"], True),
    ],
)
def test_a_cut_the_floors_hold_back_says_what_was_removed(good, args, reached, tmp_path, capsys):
    assert main(["prune", f"model={good}", *args, "imgsz=64", "dry_run=True"]) == 0
    said = [w for w in warnings(capsys.readouterr().out) if "could not be reached" in w]
    assert len(said) == (0 if reached else 1), said
    if said:
        assert "removed " in said[0] and "instead" in said[0] and "min_keep" in said[0]


TASK_TRAINERS = {
    "yolov8n.yaml": "SlimTrainer",
    "yolov8n-seg.yaml": "SlimSegmentationTrainer",
    "yolov8n-pose.yaml": "SlimPoseTrainer",
    "yolov8n-obb.yaml": "SlimOBBTrainer",
}


@pytest.mark.parametrize("cfg", fast_only("yolov8n-pose.yaml", list(TASK_TRAINERS)))
def test_the_closing_hint_names_the_tasks_trainer(cfg, tmp_path, capsys):
    trainer = TASK_TRAINERS[cfg]
    yoloslim.prune(build(cfg), ratio=0.3, imgsz=64, project=tmp_path, name="p")
    out = capsys.readouterr().out
    assert f"trainer=yoloslim.{trainer})" in out and hasattr(yoloslim, trainer)


def test_dry_run_shows_the_plan_and_writes_nothing(good, tmp_path, capsys):
    assert main(["prune", f"model={good}", "ratio=0.5", "dry_run=True", f"project={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "dry run: would prune" in out and "dry run: nothing was written" in out
    assert "group" in out and "kept" in out and "model.22.cv3.0.0.conv" in out  # the plan, group by group
    assert not any(tmp_path.iterdir())


# --- sweep and compare keep earlier results unless told ------------------------------------------------------------


@pytest.mark.slow  # a sweep
def test_sweep_refuses_to_replace_an_earlier_sweep(good, tiny_data, tmp_path, capsys):
    args = ["sweep", f"model={good}", f"data={tiny_data}", "levels=0.5", "imgsz=64", "runs=0", f"project={tmp_path}"]
    assert main(args) == 0
    one_line(args, "already holds sweep.csv, sweep.png; pass exist_ok=True", capsys, tmp_path)
    assert main([*args, "exist_ok=True"]) == 0


def finished_pipeline(folder: Path) -> Path:
    """A pipeline folder's report.csv as 'yoloslim pipeline' writes it: baseline, sparse, pruned, finetuned rows."""
    folder.mkdir(parents=True)
    rows = [
        ("baseline", 0.0, 3000000, 8.0, 0.5, 0.3),
        ("sparse", 0.0, 3000000, 8.0, 0.48, 0.29),
        ("pruned", 0.5, 1200000, 3.5, 0.4, 0.2),
        ("finetuned", 0.5, 1200000, 3.5, 0.49, 0.3),
    ]
    columns = ["stage", "level", "params", "gflops", "mAP50", "mAP50-95"]
    pd.DataFrame(rows, columns=columns).to_csv(folder / "report.csv", index=False)
    return folder


def test_compare_refuses_to_replace_an_earlier_comparison(tmp_path, capsys):
    run = finished_pipeline(tmp_path / "runs" / "yolov8n")
    args = ["compare", f"runs={run}", f"project={tmp_path}", "name=c"]
    assert main(args) == 0
    one_line(args, "already holds compare.csv, compare.md, compare.png; pass exist_ok=True", capsys, tmp_path)
    assert main([*args, "exist_ok=True"]) == 0


def test_compare_says_what_runs_makes_it_ignore(tmp_path, capsys):
    run = finished_pipeline(tmp_path / "runs" / "yolov8n")
    capsys.readouterr()
    table = yoloslim.compare(runs=str(run), models="yolo11n.yaml", levels="0.3", project=tmp_path, name="c")
    said = warnings(capsys.readouterr().out)
    assert len(said) == 2 and "models=yolo11n.yaml is ignored" in said[0] and "levels=0.3 is ignored" in said[1]
    assert list(table.model) == ["yolov8n", "yolov8n"]


def test_the_python_api_refuses_as_the_cli_does(good, tmp_path):
    with pytest.raises(YoloslimError, match="already within it"):
        yoloslim.prune(good, gflops=1000, project=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "text,message",
    [
        ("backbone: 5\nhead: 3\n", "is not a model yaml: its head: is not a list"),
        ("a: [1\n", "could not read the model yaml"),
    ],
)
def test_a_broken_model_yaml_is_one_line(text, message, tmp_path, capsys):
    (tmp_path / "m.yaml").write_text(text)
    one_line(["inspect", f"model={tmp_path / 'm.yaml'}"], message, capsys, tmp_path)


def test_a_checkpoint_suffix_in_capitals_loads(good, tmp_path):
    import shutil

    shutil.copy(good, tmp_path / "best.PT")
    assert yoloslim.prune(tmp_path / "best.PT", ratio=0.3, imgsz=64, save=False, verbose=False).plan.removed > 0


def test_validation_sizes_are_checked_before_any_work(good, tiny_data, tmp_path, capsys):
    argv = ["prune", f"model={good}", "max_drop=0.01", f"data={tiny_data}", "val_imgsz=100", f"project={tmp_path}"]
    one_line(argv, "val_imgsz=100 is not a multiple of the model's stride 32; use 96 or 128", capsys, tmp_path)
    argv = ["sweep", f"model={good}", f"data={tiny_data}", "imgsz=64", "batch=-1", f"project={tmp_path}"]
    one_line(argv, "batch=-1: sweep validates, which takes a whole number of images", capsys, tmp_path)


def test_rounding_that_holds_a_ratio_back_is_said_too(good, capsys):
    yoloslim.prune(good, ratio=0.3, round_to=8, imgsz=64, dry_run=True)
    said = [w for w in warnings(capsys.readouterr().out) if "could not be reached" in w]
    assert len(said) == 1 and "round_to=8" in said[0], said


@pytest.mark.parametrize(
    "report,message",
    [
        ("", "is not a readable report (EmptyDataError)"),
        ('garbage,"\n', "is not a readable report (ParserError)"),
        ("stage,level\nbaseline,0\nsparse,0\n", "lacks the columns params, gflops, mAP50, mAP50-95"),
        ("stage,level,params,gflops,mAP50,mAP50-95\nbaseline,0,many,8,0.5,0.3\n", "has a non-numeric level"),
        ("stage,level,params,gflops,mAP50,mAP50-95\nbaseline,0,1,8,0.5,0.3\nbaseline,0,1,8,0.5,0.3\n", "a stage twice"),
    ],
)
def test_a_damaged_report_is_one_line(report, message, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "report.csv").write_text(report)
    one_line(["compare", f"runs={tmp_path / 'run'}", f"project={tmp_path}", "name=c"], message, capsys, tmp_path)


def test_compare_names_each_run_once_and_apart(tmp_path, capsys):
    a, b = finished_pipeline(tmp_path / "a" / "yolov8n"), finished_pipeline(tmp_path / "b" / "yolov8n")
    table = yoloslim.compare(runs=f"{a},{b}", project=tmp_path, name="c")
    assert list(table.model) == ["a-yolov8n", "a-yolov8n", "b-yolov8n", "b-yolov8n"]  # two runs, not one twice
    one_line(["compare", f"runs={a},{a}", f"project={tmp_path}", "name=d"], "names a folder twice", capsys, tmp_path)
    argv = ["compare", f"runs={a}", f"project={tmp_path / 'a'}", "name=yolov8n"]
    one_line(argv, "is the runs= folder", capsys, tmp_path)


def test_compare_says_which_levels_a_run_did_not_finish(tmp_path, capsys):
    run = finished_pipeline(tmp_path / "run")
    report = pd.read_csv(run / "report.csv")
    extra = report[report.stage == "pruned"].assign(level=0.7)
    pd.concat([report, extra]).to_csv(run / "report.csv", index=False)
    capsys.readouterr()
    table = yoloslim.compare(runs=str(run), project=tmp_path, name="c")
    assert list(table.level) == [0.0, 0.5]
    assert any("level 0.7 has no finetuned row" in w for w in warnings(capsys.readouterr().out))
