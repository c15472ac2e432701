"""Training verbs, the task trainers, help and the command line, as a demanding new user meets them: refusals are
one line and leave nothing behind, on every path to a training; help reads for a user; Ctrl-C is one line."""

import hashlib
import inspect
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import build, tiny_train_args

import yoloslim
from yoloslim import YoloslimError
from yoloslim.checkpoint import save_checkpoint
from yoloslim.cli import load_verbs, main


def tree(folder):
    """Every path under folder with its sha256 (files), Ultralytics' label caches left out."""
    folder = Path(folder)
    return {
        p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
        if p.suffix != ".cache"
    }


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A trained-looking detect checkpoint (names bud, leaf), a finished run folder holding one, an obb checkpoint."""
    d = tmp_path_factory.mktemp("models")
    detect = build("yolov8n.yaml", nc=2)
    detect.names = {0: "bud", 1: "leaf"}
    save_checkpoint(detect, d / "detect.pt")
    (d / "run" / "weights").mkdir(parents=True)
    save_checkpoint(detect, d / "run" / "weights" / "best.pt")
    save_checkpoint(build("yolov8n-obb.yaml", nc=2), d / "obb.pt")
    return d


# --- refusals: one line (CLI) or one YoloslimError (API), before any work, nothing left behind -------------------

CLI_REFUSALS = [  # {m}: the models folder, {data}: a good data.yaml
    ("train model=yolov8n.yaml data={data} optimizer=Foo", "optimizer=Foo is not an optimizer Ultralytics has"),
    ("finetune model={m}/detect.pt data={data} optimizer=sgdd", "did you mean SGD?"),
    ("train model={m}/detect.pt data={data} freeze=100", "freeze=100 freezes all 23 layers"),
    ("sparse model={m}/detect.pt data={data} freeze=0,30", "freeze= names layer 30"),
    ("train model={m}/detect.pt data={data} freeze=-2", "freeze=-2 must be a layer count >= 0"),
    ("train model={m}/detect.pt data={data} imgsz=100", "imgsz=100 is not a multiple of the model's stride 32"),
    ("sparse model=yolov8n.yaml data={data} imgsz=48", "imgsz=48 is not a multiple of the model's stride 32"),
    ("finetune model={m}/detect.pt data={data} imgsz=200", "imgsz=200 is not a multiple of the model's stride 32"),
    ("train model={m}/detect.pt data={data} resume={m}/detect.pt", "is a finished run"),
    ("finetune model={m}/detect.pt data={data} resume=True", "is a finished run"),
    ("train model=yolov8n.yaml data={data} resume=True", "resume=True resumes model="),
    ("train model={m}/detect.pt data={data} resume={m}/none.pt", "none.pt does not exist"),
    ("finetune model={m}/run/weights/best.pt data={data} project={m} name=run exist_ok=True", "is inside"),
    ("sparse model={m}/run/weights/best.pt data={data} project={m} name=run exist_ok=True", "is inside"),
    (
        "train model={m}/detect.pt data={data} pretrained={m}/run/weights/best.pt project={m} name=run exist_ok=1",
        "inside",
    ),
]


@pytest.mark.parametrize(
    "words,message", CLI_REFUSALS, ids=[c[0].split(" {")[0] + " " + c[1][:24] for c in CLI_REFUSALS]
)
def test_a_refused_training_is_one_line_and_leaves_nothing(words, message, models, tiny_data, tmp_path, capsys):
    before = tree(models), tree(tiny_data.parent)
    argv = words.format(m=models, data=tiny_data).split() + [f"project={tmp_path / 'runs'}"] * ("project=" not in words)
    argv += [f"{k}={v}" for k, v in tiny_train_args(tmp_path).items() if k + "=" not in words and k != "project"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("yoloslim: error: ") and message in err, err
    assert (tree(models), tree(tiny_data.parent)) == before
    assert not (tmp_path / "runs").exists()


API_REFUSALS = [  # (model in {m}, trainer, extra arguments, message): each reaches the trainer at another stage
    ("detect.pt", "SlimOBBTrainer", {}, "SlimOBBTrainer trains obb models; this is a detect model: use yoloslim.Slim"),
    ("detect.pt", "SparsePoseTrainer", {}, "this is a detect model: use yoloslim.SparseTrainer"),
    ("obb.pt", "SlimTrainer", {}, "SlimTrainer trains detect models; this is an obb model: use yoloslim.SlimOBB"),
    ("yolov8n.yaml", "SlimSegmentationTrainer", {}, "this is a detect model: use yoloslim.SlimTrainer"),
    ("detect.pt", "SlimTrainer", {"optimizer": "Foo"}, "Ultralytics refused it: Optimizer 'Foo' not found"),
    ("detect.pt", "SparseTrainer", {"freeze": 100}, "Ultralytics refused it: 'freeze=100' froze the entire model"),
    ("detect.pt", "SlimTrainer", {"imgsz": 100}, "imgsz=100 is not a multiple of the model's stride 32"),
    ("run/weights/best.pt", "SlimTrainer", {"name": "run", "exist_ok": True, "project": "{m}"}, "is inside"),
]


@pytest.mark.parametrize("model,trainer,extra,message", API_REFUSALS, ids=[f"{c[1]}-{c[3][:20]}" for c in API_REFUSALS])
def test_the_api_trainers_refuse_in_one_error_and_leave_nothing(
    model, trainer, extra, message, models, tiny_data, tmp_path
):
    from ultralytics import YOLO

    before = tree(models), tree(tiny_data.parent)
    source = models / model if model.endswith(".pt") else model
    args = {**tiny_train_args(tmp_path / "runs"), "exist_ok": False, **extra}
    args["project"] = args["project"].format(m=models)
    with pytest.raises(YoloslimError) as e:
        YOLO(str(source)).train(data=str(tiny_data), trainer=getattr(yoloslim, trainer), **args)
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert (tree(models), tree(tiny_data.parent)) == before
    assert not (tmp_path / "runs").exists()


def test_a_refusal_never_removes_a_folder_it_did_not_make(models, tiny_data, tmp_path):
    """exist_ok=True into a run folder that already holds a user's files: the refusal leaves them all."""
    from ultralytics import YOLO

    mine = tmp_path / "runs" / "mine"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me")
    args = {**tiny_train_args(tmp_path / "runs"), "name": "mine", "exist_ok": True, "optimizer": "Foo"}
    with pytest.raises(YoloslimError, match="Optimizer 'Foo' not found"):
        YOLO(str(models / "detect.pt")).train(data=str(tiny_data), trainer=yoloslim.SlimTrainer, **args)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_sparse_settings_accumulate_over_using():
    trainer = yoloslim.SparseTrainer.using(sr=1).using(penalty="l1").using(sr_share=0.3)
    assert trainer.settings == {"sr": 1.0, "penalty": "l1", "sr_share": 0.3}
    assert yoloslim.SparseTrainer.using(sr=1).using(sr=2).settings == {"sr": 2.0}  # the later one wins
    assert yoloslim.SparseTrainer.settings == {}  # the base class is left alone
    with pytest.raises(YoloslimError, match="penalty='l2' is not one of"):
        yoloslim.SparseTrainer.using(sr=1).using(penalty="l2")


# --- the class outputs follow the classes by name ---------------------------------------------------------------


def class_rows(model):
    return [seq[-1].weight.detach().clone() for seq in model.model[-1].cv3]


@pytest.mark.parametrize(
    "names,expect",
    [
        ({0: "leaf", 1: "bud"}, {0: 1, 1: 0}),  # the same classes in another order: moved
        ({0: "bud", 1: "stone"}, {0: 0, 1: None}),  # one kept, one new
        ({0: "tree", 1: "bush"}, {0: None, 1: None}),  # none known: all new
        ({0: "stone", 1: "leaf", 2: "bud"}, {0: None, 1: 1, 2: 0}),  # another count (as before)
        ({0: "leaf"}, {0: 1}),
        ({0: "bud", 1: "leaf"}, {0: 0, 1: 1}),  # the same: untouched
    ],
)
def test_class_outputs_are_mapped_by_name_whatever_the_count(names, expect, caplog):
    from yoloslim.trainer import fit_classes

    model = build("yolov8n.yaml", nc=2)
    model.names = {0: "bud", 1: "leaf"}
    before = class_rows(model)
    fit_classes(model, names)
    assert model.model[-1].nc == len(names) and model.names == names
    for level, rows in enumerate(class_rows(model)):
        for new, old in expect.items():
            if old is None:  # a fresh row, not a copy of any old one
                assert not any(torch.equal(rows[new], before[level][i]) for i in range(2))
            else:
                assert torch.equal(rows[new], before[level][old])
    changed = names != {0: "bud", 1: "leaf"}
    assert ("mapped by name" in caplog.text) == changed


def test_placeholder_names_keep_their_rows(caplog):
    """A model that never had class names (Ultralytics' 0, 1 from a yaml) keeps its rows when the count fits."""
    from yoloslim.trainer import fit_classes

    model = build("yolov8n.yaml", nc=2)
    before = class_rows(model)
    fit_classes(model, {0: "bud", 1: "leaf"})
    assert all(torch.equal(a, b) for a, b in zip(class_rows(model), before)) and "mapped" not in caplog.text


@pytest.mark.slow  # a training
def test_finetune_on_the_same_classes_in_another_order_keeps_their_meaning(models, tiny_data, tmp_path):
    from ultralytics import YOLO

    data = tmp_path / "swapped.yaml"
    data.write_text(f"path: {tiny_data.parent}\ntrain: images/train\nval: images/val\nnames: [leaf, bud]\n")
    args = tiny_train_args(tmp_path, name="ft", optimizer="SGD", lr0=0.0, momentum=0.0, weight_decay=0.0)
    tuned = YOLO(yoloslim.finetune(models / "detect.pt", data, **args)).model
    source = YOLO(str(models / "detect.pt")).model
    for level in range(3):  # lr0=0: leaf's row is the old leaf row, now at index 0
        after, before = tuned.model[-1].cv3[level][-1].weight, source.model[-1].cv3[level][-1].weight
        torch.testing.assert_close(after[[0, 1]].float(), before[[1, 0]].float())
    assert tuned.names == {0: "leaf", 1: "bud"}


# --- help, --help, --version -------------------------------------------------------------------------------------

DOCSTRING_WORDS = ("return", "raise", "YoloslimError", "a module", "=None", "None", "self.")


@pytest.mark.parametrize("verb_name", list(load_verbs()))
def test_help_of_every_verb_reads_for_a_user(verb_name, capsys):
    fn = load_verbs()[verb_name]
    assert main(["help", *verb_name.split()]) == 0
    text = capsys.readouterr().out
    assert not [w for w in DOCSTRING_WORDS if w in text], text
    lines = text.splitlines()
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_KEYWORD or p.name == "verbose":
            continue
        line = next((line for line in lines if line.startswith(f"  {p.name}=")), None)
        assert line is not None, f"{verb_name}: {p.name}= is not in its help"
        assert len(line.split(maxsplit=1)) == 2 and len(line.split(maxsplit=1)[1]) > 20, line  # a meaning
    assert main([*verb_name.split(), "--help"]) == 0 and capsys.readouterr().out == text
    assert main([*verb_name.split(), "-h"]) == 0 and capsys.readouterr().out == text


def test_help_marks_what_is_required_and_the_verb_agrees(models, tiny_data, capsys, tmp_path, monkeypatch):
    """An argument help calls required is refused when missing, with one line naming it (not data=None)."""
    monkeypatch.chdir(tmp_path)
    given = {"model": f"model={models}/detect.pt", "data": f"data={tiny_data}", "source": f"source={tmp_path}"}
    for verb_name in load_verbs():
        assert main(["help", *verb_name.split()]) == 0
        usage = capsys.readouterr().out.splitlines()[0]  # usage: yoloslim sweep model=... data=... [key=value ...]
        required = [word[: -len("=...")] for word in usage.split() if word.endswith("=...")]
        for missing in required:
            others = [given[k] for k in required if k != missing]
            assert main([*verb_name.split(), *others]) == 2, (verb_name, missing)
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"{missing}=" in err, (verb_name, err)
    assert main(["help", "sweep"]) == 0
    data_line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  data="))
    assert data_line.endswith("(required)") and "None" not in data_line


def test_runs_says_which_it_is(capsys):
    texts = {}
    for verb_name in ("export", "sweep", "compare"):
        main(["help", verb_name])
        texts[verb_name] = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  runs="))
    assert "latency" in texts["export"] and "latency" in texts["sweep"]
    assert "pipeline folders" in texts["compare"] and "latency" not in texts["compare"]


def test_help_and_the_bare_group_show_the_data_verbs(capsys):
    for argv in (["help", "data"], ["data"], ["data", "--help"]):
        assert main(argv) == 0, argv
        out = capsys.readouterr().out
        assert all(f"data {v}" in out for v in ("synth", "check", "convert", "tile")), out
    assert main(["data", "frob"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the data verbs are synth, check, convert, tile" in err
    for argv in (["--help"], ["-h"], ["help"], []):
        assert main(argv) == 0 and "data synth" in capsys.readouterr().out


def run_cli(*argv, **popen):
    return subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom yoloslim.cli import main\nsys.exit(main())", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "YOLO_OFFLINE": "1"},
        **popen,
    )


def test_version_answers_without_loading_torch():
    code = "import sys\nfrom yoloslim.cli import main\nmain(['--version'])\nprint('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    line, loaded = run.stdout.splitlines()
    assert line.startswith(f"yoloslim {yoloslim.__version__} (Ultralytics 8.") and "torch" in line
    assert loaded == "False"  # help and --version need neither torch nor Ultralytics: instant, and Ctrl-C-safe


@pytest.mark.slow  # child processes, one training start per moment
@pytest.mark.parametrize("after", [0.2, 1.5, 4.0])
def test_ctrl_c_at_any_moment_of_a_start_is_one_line(after, models, tiny_data, tmp_path):
    """SIGINT while Python imports torch, while the trainer builds, or in the first epoch: 'interrupted', 130,
    and no run folder without a last.pt."""
    args = tiny_train_args(tmp_path / "runs", epochs=3, exist_ok=False)
    child = run_cli("train", f"model={models}/detect.pt", f"data={tiny_data}", *[f"{k}={v}" for k, v in args.items()])
    time.sleep(after)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    if child.returncode == 0:
        pytest.skip("the training finished before the signal")
    assert child.returncode == 130 and err.strip().splitlines()[-1] == "yoloslim: interrupted", err
    assert "Traceback" not in err and err.count("\n") == 1, err
    runs = tmp_path / "runs"
    assert not runs.exists() or all((d / "weights" / "last.pt").exists() for d in runs.iterdir())


@pytest.mark.slow  # trainings
def test_no_training_path_warns_about_frozen_layers(models, tiny_data, tmp_path, capsys):
    """A checkpoint (saved with requires_grad off) trained by every path gets no 'setting requires_grad' lines."""
    from ultralytics import YOLO

    args = tiny_train_args(tmp_path)
    yoloslim.train(models / "detect.pt", tiny_data, **{**args, "name": "t"})
    yoloslim.sparse(models / "detect.pt", tiny_data, **{**args, "name": "s"})
    yoloslim.finetune(models / "detect.pt", tiny_data, **{**args, "name": "f"})
    YOLO(str(models / "detect.pt")).train(data=str(tiny_data), trainer=yoloslim.SlimTrainer, **{**args, "name": "a"})
    sparse_trainer = yoloslim.SparseTrainer.using(sr=1)
    YOLO(str(models / "detect.pt")).train(data=str(tiny_data), trainer=sparse_trainer, **{**args, "name": "b"})
    out = capsys.readouterr()
    assert "requires_grad" not in out.out + out.err
