"""Bad inputs get one clear line and exit 2, inputs are never modified, and random plans never break a model."""

import hashlib
import os
import random
import shutil
from pathlib import Path

import pytest
import torch
from helpers import EVERY_CONFIG, SMALL_CONFIGS, build, tiny_train_args

from yoloslim.blocks import build_graph
from yoloslim.checkpoint import save_checkpoint
from yoloslim.cli import main
from yoloslim.plan import Plan, fingerprint, keep_floor
from yoloslim.slimming import prune_in_place


def digest(folder):
    """sha256 of every file under folder: proof that a command left its inputs alone. Ultralytics' own label
    cache (labels/*.cache, written beside a dataset's labels by any training) is left out."""
    return {
        p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix != ".cache"
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_data):
    """A folder of good and bad input files, made once."""
    from ultralytics.cfg import DEFAULT_CFG_PATH
    from ultralytics.nn.tasks import ClassificationModel, DetectionModel

    d = tmp_path_factory.mktemp("inputs")
    good = save_checkpoint(build("yolov8n.yaml", nc=2), d / "good.pt")
    (d / "text.pt").write_text("these are not weights\n")
    (d / "truncated.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    torch.save({"epoch": 3, "optimizer": None}, d / "nomodel.pt")
    torch.save([1, 2, 3], d / "list.pt")
    torch.save(build("yolov8n.yaml", nc=2).state_dict(), d / "statedict.pt")
    torch.save({"model": build("yolov8n.yaml", nc=2).state_dict()}, d / "statedict2.pt")
    no_bn = build("yolov8n.yaml", nc=2)
    no_bn.model[3].bn = torch.nn.Identity()
    torch.save({"model": no_bn}, d / "identity.pt")
    (d / "model.onnx").write_bytes(b"\x08\x07")
    save_checkpoint(ClassificationModel("yolov8n-cls.yaml", nc=2, verbose=False), d / "classify.pt")
    stock = (Path(DEFAULT_CFG_PATH).parent / "models" / "v8" / "yolov8.yaml").read_text()
    (d / "yolov8n-repc3.yaml").write_text(stock.replace("SPPF, [1024, 5]", "RepC3, [1024]"))  # an RT-DETR block
    save_checkpoint(DetectionModel(str(d / "yolov8n-repc3.yaml"), nc=2, verbose=False), d / "custom.pt")
    fused = build("yolov8n.yaml", nc=2).fuse(verbose=False)
    save_checkpoint(fused, d / "fused.pt")
    (d / "broken.yaml").write_text("train: [images/train\nval: images/val\n")
    (d / "empty").mkdir()
    (d / "empty" / "images" / "train").mkdir(parents=True)
    (d / "empty" / "images" / "val").mkdir(parents=True)
    (d / "empty.yaml").write_text(f"path: {d / 'empty'}\ntrain: images/train\nval: images/val\nnames: [bud, leaf]\n")
    (d / "nc.yaml").write_text(
        f"path: {tiny_data.parent}\ntrain: images/train\nval: images/val\nnc: 3\nnames: [bud, leaf]\n"
    )
    (d / "badxml").mkdir()
    (d / "badxml" / "a.xml").write_text("<annotation><object>")
    (d / "noimage").mkdir()
    (d / "noimage" / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><object><name>tree</name></object></annotation>"
    )
    (d / "voc").mkdir()
    box = "<bndbox><xmin>2</xmin><ymin>2</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>"
    for name, image in zip("ab", sorted((tiny_data.parent / "images" / "train").iterdir())):
        shutil.copy(image, d / "voc" / f"{name}.jpg")
        (d / "voc" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename><object><name>tree</name>{box}</object></annotation>"
        )
    (d / "notcoco.json").write_text("[1, 2]")
    (d / "nobox.json").write_text(
        '{"images": [{"id": 1, "file_name": "voc/a.jpg"}], "categories": [{"id": 1, "name": "tree"}], '
        '"annotations": [{"id": 1, "image_id": 1, "category_id": 1}]}'
    )
    (d / "noname").mkdir()
    shutil.copy(d / "voc" / "a.jpg", d / "noname" / "a.jpg")
    (d / "noname" / "a.xml").write_text(f"<annotation><object><name>tree</name>{box}</object><object/></annotation>")
    (d / "prunedir" / "slim.pt").parent.mkdir()
    (d / "prunedir" / "slim.pt").write_bytes(good.read_bytes())
    return d


NO_GPU = not torch.cuda.is_available()
LONG = "n" * 300  # longer than any file system allows for one name
# (arguments, a fragment of the one-line message). {d} is the inputs folder, {data} a good data.yaml.
# docs/errors.md is this list with each case's full message (see test_errors_doc_is_this_list).
BAD = [
    # files that are not what they should be
    ("prune model={d}/missing.pt ratio=0.5", "missing.pt does not exist"),
    ("prune model={d}/text.pt ratio=0.5", "not a readable PyTorch checkpoint (corrupt or truncated?)"),
    ("prune model={d}/truncated.pt ratio=0.5", "not a readable PyTorch checkpoint (corrupt or truncated?)"),
    ("prune model={d}/nomodel.pt ratio=0.5", "checkpoint without a model"),
    ("prune model={d}/list.pt ratio=0.5", "is not an Ultralytics checkpoint"),
    ("prune model={d}/statedict.pt ratio=0.5", "holds a state_dict"),
    ("prune model={d}/statedict2.pt ratio=0.5", "holds a state_dict"),
    ("prune model={d}/identity.pt ratio=0.5", "has Identity where its BatchNorm should be"),
    (
        "prune model={d}/classify.pt ratio=0.5",
        "is a ClassificationModel (a classification model); yoloslim prunes YOLO detect",
    ),
    ("prune model={d}/fused.pt ratio=0.5", "is fused"),
    ("prune model={d}/custom.pt ratio=0.5", "layer 9 (model.9): RepC3 is not supported by the pruner"),
    ("train model={d} data={data}", "is a folder; give a checkpoint in it"),
    ("sparse model={d}/model.onnx data={data}", "give the .pt it was exported from"),
    ("inspect model={d}/truncated.pt", "corrupt or truncated"),
    ("export model={d}/missing.pt", "does not exist"),
    ("train model={d}/truncated.pt data={data}", "corrupt or truncated"),
    ("finetune model=yolov8n.yaml data={data}", "must be a pruned .pt checkpoint"),
    ("finetune model={d}/classify.pt data={data}", "not this one: it has no Detect head to keep"),
    # values of the wrong type
    ("prune model={d}/good.pt ratio=half", "ratio=half is not a number"),
    ("prune model={d}/good.pt ratio=0.5.5", "ratio=0.5.5 is not a number"),
    ("prune model={d}/good.pt ratio=", "ratio= is not a number"),
    ("prune model={d}/good.pt threshold=abc", "threshold=abc is not a number"),
    ("prune model={d}/good.pt ratio=0.5 imgsz=abc", "imgsz=abc is not a whole number"),
    ("train model=yolov8n.yaml data={data} epochs=abc", "epochs=abc is not a whole number"),
    ("prune model={d}/good.pt ratio=0.5 min_keep=x", "min_keep=x is not a number"),
    ("prune model={d}/good.pt ratio=0.5 exist_ok=maybe", "exist_ok=maybe must be true or false"),
    ("train model=yolov8n.yaml data={data} lr0=abc", "'lr0=abc' is of invalid type str"),
    # values that make no sense
    ("prune model={d}/good.pt ratio=0", "ratio=0 is impossible"),
    ("prune model={d}/good.pt ratio=1", "ratio=1 is impossible"),
    ("prune model={d}/good.pt ratio=-0.3", "ratio=-0.3 is impossible"),
    ("prune model={d}/good.pt ratio=1e-9", "removes no channel"),
    ("prune model={d}/good.pt threshold=nan", "threshold=nan is not a finite number"),
    ("prune model={d}/good.pt threshold=100 min_keep=0 max_group_ratio=1", "would remove every channel"),
    ("prune model={d}/good.pt ratio=0.5 max_group_ratio=0", "max_group_ratio=0 is impossible"),
    ("prune model={d}/good.pt ratio=0.5 gflops=3", "give one of ratio=, threshold=, plan="),
    ("prune model={d}/good.pt gflops=0.001", "gflops=0.001 cannot be reached"),
    ("prune model={d}/good.pt max_drop=0.01", "max_drop= needs data="),
    ("prune model={d}/good.pt speedup=0.5", "speedup=0.5 must be a number >= 1"),
    ("prune model={d}/good.pt ratio=0.5 dry_run=perhaps", "dry_run=perhaps must be true or false"),
    ("prune model={d}/good.pt speedup=1.5 runtime=tensorrt", "latency is measured on onnxruntime or openvino"),
    ("prune model={d}/good.pt speedup=1.5 precision=bf16", "onnxruntime runs fp32, int8 here"),
    ("prune model={d}/good.pt speedup=1.5 runtime=openvino precision=int8", "precision=int8 calibrates"),
    ("export model={d}/good.pt format=engine", "TensorRT builds and runs engines only on an NVIDIA GPU"),
    ("export model={d}/good.pt format=mnn", "needs protobuf<6"),
    ("export model={d}/good.pt format=tflite2", "is not an export format"),
    ("export model={d}/good.pt format=openvino int8=True", "int8=True calibrates on images of your data"),
    ("export model={d}/good.pt format=ncnn int8=True data={data}", "not ncnn's"),
    ("sweep model={d}/good.pt", "sweep needs data="),
    ("sweep model={d}/good.pt data={data} levels=0.5,2", "levels=0.5,2 must be prune ratios"),
    ("sweep model={d}/good.pt data={data} project=/proc/nope imgsz=64", "cannot write in /proc/nope"),
    ("prune model={d}/good.pt ratio=0.5 min_keep=1.5", "min_keep=1.5 is neither"),
    ("prune model={d}/good.pt ratio=0.5 round_to=0", "round_to=0 must be"),
    ("prune model={d}/good.pt ratio=0.5 imgsz=-32", "imgsz=-32 must be a whole number between 32 and 8192"),
    ("prune model={d}/good.pt ratio=0.5 imgsz=0", "imgsz=0 must be a whole number between 32 and 8192"),
    ("prune model={d}/good.pt ratio=0.5 imgsz=100", "imgsz=100 is not a multiple of the model's stride 32"),
    ("prune model={d}/good.pt ratio=0.5 name=", "name= must not be empty"),
    ("prune model={d}/good.pt ratio=0.5 name=../x", "name=../x must be a folder name inside project="),
    ("sweep model={d}/good.pt data={data} name=a/../../x", "must be a folder name inside project="),
    ("prune model={d}/good.pt plan={d}/text.pt", "not a yoloslim plan.json"),
    ("prune model={d}/good.pt ratio=0.5 plan={d}/text.pt", "got ratio=, plan="),
    ("train model=yolov8n.yaml data={data} epochs=0", "epochs=0 must be a whole number >= 1"),
    ("train model=yolov8n.yaml data={data} batch=0", "batch=0 must be a whole number of images >= 1"),
    ("export model={d}/good.pt imgsz=100", "not a multiple of the model's stride"),
    ("export model={d}/good.pt runs=-1", "runs=-1 must be a whole number >= 0"),
    ("sparse model=yolov8n.yaml data={d}/missing.yaml sr=-1", "sr=-1 must be a number >= 0"),
    ("sparse model=yolov8n.yaml data={d}/missing.yaml penalty=l2", "penalty='l2' is not one of wide, lowest, l1"),
    ("sparse model=yolov8n.yaml data={data} sr_share=2", "sr_share=2 is impossible"),
    ("pipeline levels=0.5,1.2", "must be prune ratios between 0 and 1"),
    ("pipeline sr_step=1.5", "sr_step=1.5 is impossible"),
    ("pipeline round_to=0", "round_to=0 must be"),
    ("pipeline data={data} imgsz=100", "imgsz=100 is not a multiple of the model's stride 32"),
    ("pipeline model={d}/missing.pt data={data} pretrain_epochs=0", "missing.pt does not exist"),
    ("pipeline data={d}/nc.yaml", "says nc: 3 but names: lists 2 classes"),
    ("compare models=yolov8n.yaml,yolov8n.yaml", "names a model twice"),
    ("compare runs={d}/empty", "has no report.csv"),
    # unknown names
    ("prune model={d}/good.pt rate=0.5", "'rate' is not an argument of 'prune'; did you mean 'ratio'?"),
    ("train model=yolov8n.yaml data={data} lr=0.01", "'lr' is not an argument of 'train'; did you mean"),
    ("compare levls=0.5", "'levls' is not an argument of 'compare'; did you mean 'levels'?"),
    ("prune", "prune needs model="),
    ("prune model={d}/good.pt ratio=0.3 ratio=0.5", "ratio= is given twice"),
    ("prune model={d}/good.pt ratio=0.5 min_keep=", "min_keep= is empty"),
    ("prune model={d}/good.pt ratio=0.5 round_to=1.5", "round_to=1.5 is not a whole number"),
    ("prune model= ratio=0.5", "model= must not be empty"),
    ("frobnicate", "unknown verb"),
    ("help frobnicate", "unknown verb"),
    # devices this machine does not have
    *(
        [
            ("train model=yolov8n.yaml data={data} device=cuda", "device=cuda is not a device here"),
            ("train model=yolov8n.yaml data={data} device=0", "device=0 is not a device here"),
            ("pipeline data={data} device=1", "device=1 is not a device here"),
        ]
        if NO_GPU
        else []
    ),
    *(
        [("train model=yolov8n.yaml data={data} device=mps", "device=mps asks for Apple's MPS")]
        if not torch.backends.mps.is_available()
        else []
    ),
    # datasets
    ("data check data={d}/missing.yaml", "not found"),
    ("data check data={d}/broken.yaml", "is not valid YAML"),
    ("data check data={d}/empty.yaml", "no images"),
    ("data check data={d}/nc.yaml", "says nc: 3 but names: lists 2 classes"),
    ("sparse model=yolov8n.yaml data={d}/empty.yaml epochs=1", "no images"),
    ("data convert", "pass source="),
    ("data convert source={d}/missing", "missing not found; give a folder of VOC .xml files"),
    ("data convert source={d}/good.pt", "is neither a .json (COCO) nor .xml files"),
    ("data convert source={d}/badxml", "a.xml is not valid XML"),
    ("data convert source={d}/notcoco.json", "is not a COCO detection file"),
    ("data convert source={d}/nobox.json", "an image, annotation or category lacks 'bbox'"),
    ("data convert source={d}/noname", "a.xml object 2 has no <name>"),
    ("data convert source={d}/noimage", "image a.jpg not found in"),
    ("data convert source={d}/voc images={d}/missing", "is not a folder"),
    ("data convert source={d}/voc val=1.5", "val=1.5 is impossible"),
    ("data convert source={d}/voc val=c", "val= names images not in the annotations: c"),
    ("data convert source={d}/voc val=a,b", "val= names every image"),
    ("data convert source={d}/voc out={d}/voc overwrite=true", "refusing to replace"),
    ("data tile data={data} size=16", "size=16 must be a whole number between 32 and 8192"),
    ("data tile data={data} overlap=1", "overlap=1 is impossible"),
    ("data tile data={data} min_visible=0", "min_visible=0 is impossible"),
    ("data tile data={data} scale=0", "scale=0 must be a positive number"),
    ("data tile data={d}/empty.yaml", "no images"),
    ("data tile data={data} out={d}/prunedir", "already exists and is not empty"),
    # outputs that cannot be written, or are someone else's
    ("prune model={d}/good.pt ratio=0.5 project={d} name=prunedir", "already holds a slim.pt; pass exist_ok=True"),
    ("prune model={d}/good.pt ratio=0.5 project={d} name=prunedir exist_ok=no", "already holds a slim.pt"),
    ("prune model={d}/good.pt ratio=0.5 project={d}/good.pt", "good.pt is a file, not a folder"),
    ("prune model={d}/good.pt ratio=0.5 project=/proc/nope", "cannot write in /proc/nope"),
    (f"prune model={{d}}/good.pt ratio=0.5 name={LONG}", "(File name too long)"),
    ("pipeline data={data} project=/proc/nope", "cannot write in /proc/nope"),
    ("train model=yolov8n.yaml data={data} project=/proc/nope", "cannot write in /proc/nope"),
    ("finetune model={d}/good.pt data={data} project={d}/good.pt", "good.pt is a file, not a folder"),
    ("compare models=yolov8n.yaml project=/proc/nope", "cannot write in /proc/nope"),
    ("export model={d}/good.pt imgsz=64 out=/proc/nope/x.onnx", "cannot write in /proc/nope"),
    ("data synth out={d}/prunedir", "already exists and is not empty; pass overwrite=True"),
    ("data synth out=/proc/nope/tea", "cannot write in /proc"),
    # round three: data convert, tile and check
    ("data convert source={d}/voc names=tree,Tree", "names= lists Tree, tree twice"),
    ("data convert source={d}/voc names=bush", "names= lacks the classes tree"),
    ("data convert source={d}/voc names=,", "names= is empty"),
    ("data tile data={data} scale=0.05", "scale=0.05 makes 24 images smaller than 10 px a side"),
    ("data tile data={data} size=32 overlap=0.99", "overlap=0.99 would cut the 16 train images into"),
    ("data tile data={data} task=pose", "lacks kpt_shape"),
    # round three: prune, budgets, sweep, compare and checkpoints
    ("prune model={d}/good.pt gflops=1000", "the unpruned model is already within it"),
    ("prune model={d}/good.pt params=1e9 imgsz=64", "the unpruned model is already within it"),
    ("prune model={d}/good.pt speedup=1", "speedup=1 asks for no speedup"),
    ("sweep model={d}/good.pt data={data} imgsz=64 project={d} name=prunedir", "already holds slim.pt; pass exist_ok"),
    ("sweep model=yolov8n.yaml data={data} imgsz=64", "the model detects 80 classes, data= has 2"),
    ("prune model={d}/good.pt plan={d}/prunedir/slim.pt", "not a yoloslim plan.json"),
    # round three: training, finetune, help and the command line
    ("train model=yolov8n.yaml data={data} optimizer=Foo", "optimizer=Foo is not an optimizer Ultralytics has"),
    ("train model={d}/good.pt data={data} freeze=100", "freeze=100 freezes all 23 layers"),
    ("finetune model={d}/good.pt data={data} freeze=0,30", "freeze= names layer 30"),
    ("finetune model={d}/good.pt data={data} imgsz=100", "imgsz=100 is not a multiple of the model's stride 32"),
    ("sparse model=yolov8n.yaml data={data} imgsz=48", "imgsz=48 is not a multiple of the model's stride 32"),
    ("train model={d}/good.pt data={data} resume={d}/good.pt", "is a finished run"),
    ("train model={d}/good.pt data={data} resume={d}/missing.pt", "missing.pt does not exist"),
    ("finetune model={d}/prunedir/slim.pt data={data} project={d} name=prunedir exist_ok=True", "is inside"),
    ("sweep model={d}/good.pt data={data} levels=0.5,0.5", "names 0.5 twice"),
    ("pipeline levels=0.6,0.7,0.6", "names 0.6 twice"),
    ("data frob", "unknown verb 'data frob'; the data verbs are synth, check, convert, tile"),
]
MESSAGES = {}  # case -> its message, paths made relative: the rows of docs/errors.md


def tree(folder):
    """Every path under folder with its sha256 (files) or None (folders): proof a command left it alone."""
    return {
        p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
    }


def first_per_verb(cases: list) -> list:
    """The first case of each verb in the fast tier, every case in 'make test' (which also writes docs/errors.md)."""
    seen, out = set(), []
    for words, message in cases:
        verb = words.split()[0]
        out.append((words, message) if verb not in seen else pytest.param(words, message, marks=pytest.mark.slow))
        seen.add(verb)
    return out


@pytest.mark.parametrize("words,message", first_per_verb(BAD), ids=[b[0].split(" {")[0] + " " + b[1][:30] for b in BAD])
def test_bad_input_is_one_clear_line(inputs, tiny_data, words, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the current folder either
    before = tree(inputs), tree(tiny_data.parent)
    argv = words.format(d=inputs, data=tiny_data).split()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("yoloslim: error: ") and message in err, err
    assert "Traceback" not in err
    assert (tree(inputs), tree(tiny_data.parent)) == before  # nothing changed, added or left behind
    assert not any(tmp_path.iterdir()), list(tmp_path.iterdir())
    text = err.strip().removeprefix("yoloslim: error: ")
    MESSAGES[words] = text.replace(str(inputs), "inputs").replace(str(tiny_data.parent), "data")


ERRORS_DOC = Path(__file__).parent.parent / "docs" / "errors.md"
DOC_HEAD = """# Bad input: what you see

Every verb answers bad input with one line on stderr and exit code 2 (add `verbose=True` for the
traceback), before any work starts, and changes nothing on disk. This table is generated by
`tests/test_hardening.py` from the cases it runs (`inputs/` is a folder of broken files, `data/` a good
dataset); `YOLOSLIM_UPDATE_DOCS=1 make test` rewrites it, and the test fails when the two disagree.

| command | message |
|---|---|
"""


def test_errors_doc_is_this_list():
    if len(MESSAGES) < len(BAD):
        pytest.skip("runs after every bad-input case (not selected here)")
    cell = lambda text: text.replace("|", "\\|")  # noqa: E731
    rows = [
        f"| `yoloslim {cell(words.format(d='inputs', data='data/data.yaml'))}` | {cell(MESSAGES[words])} |"
        for words, _ in BAD
        if "device=" not in words
    ]  # device cases differ per machine
    text = DOC_HEAD + "\n".join(rows) + "\n"
    if os.environ.get("YOLOSLIM_UPDATE_DOCS"):
        ERRORS_DOC.write_text(text)
    assert ERRORS_DOC.read_text() == text, "docs/errors.md is out of date: run YOLOSLIM_UPDATE_DOCS=1 make test"


def test_verbose_shows_the_traceback(inputs, capsys):
    assert main(["prune", f"model={inputs}/truncated.pt", "ratio=0.5", "verbose=True"]) == 2
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.slow
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


def test_every_argument_has_a_rule():
    """Every verb checks every argument it takes, so no value reaches the work unchecked."""
    import inspect

    from yoloslim.args import RULES, VERB_RULES
    from yoloslim.cli import load_verbs

    for name, fn in load_verbs().items():
        rules = {**RULES, **VERB_RULES.get(name, {})}
        for p in inspect.signature(fn).parameters.values():
            if p.kind is not p.VAR_KEYWORD:
                assert p.name in rules, f"{name}: {p.name} has no rule in yoloslim/args.py"


def test_python_api_refuses_like_the_cli(inputs):
    from yoloslim import YoloslimError
    from yoloslim.pruning import prune

    with pytest.raises(YoloslimError, match="ratio=half is not a number"):
        prune(f"{inputs}/good.pt", ratio="half")
    with pytest.raises(YoloslimError, match="exist_ok=maybe must be true or false"):
        prune(f"{inputs}/good.pt", ratio=0.5, exist_ok="maybe")
    with pytest.raises(YoloslimError, match="'rate' is not an argument of 'prune'"):
        prune(f"{inputs}/good.pt", rate=0.5)


def test_a_held_output_folder_refuses_a_second_run(inputs, tmp_path, capsys):
    """Two prunes into one folder at once: the second is refused, the first one's files stay."""
    from yoloslim.io import owned

    with owned(tmp_path / "p"):  # as a running prune holds it
        assert main(["prune", f"model={inputs}/good.pt", "ratio=0.5", f"project={tmp_path}", "name=p"]) == 2
        assert "is in use by another yoloslim run" in capsys.readouterr().err
        assert not (tmp_path / "p" / "slim.pt").exists()
    assert main(["prune", f"model={inputs}/good.pt", "ratio=0.5", f"project={tmp_path}", "name=p"]) == 0
    assert not (tmp_path / "p" / ".yoloslim.lock").exists()


def test_outputs_get_normal_permissions(inputs, tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["prune", f"model={inputs}/good.pt", "ratio=0.5", f"project={tmp_path}", "name=p"]) == 0
    finally:
        os.umask(old)
    for f in ("slim.pt", "plan.json", "layers.csv", "channels.png"):
        assert (tmp_path / "p" / f).stat().st_mode & 0o777 == 0o644, f


def run_cli(argv, preamble="", timeout=120, **popen):
    """yoloslim's CLI in a child process (preamble: Python run first, e.g. resource limits)."""
    import subprocess
    import sys

    code = f"import sys\n{preamble}\nfrom yoloslim.cli import main\nsys.exit(main({argv!r}))"
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "YOLO_OFFLINE": "1"},
        **popen,
    )


@pytest.mark.slow  # child processes
def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(inputs, tmp_path):
    # A file size limit makes every write past 64 KB fail as a full disk does (EFBIG instead of ENOSPC).
    limit = (
        "import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))"
    )
    child = run_cli(["prune", f"model={inputs}/good.pt", "ratio=0.5", f"project={tmp_path}", "name=p"], limit)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 2, err
    assert err.count("\n") == 1 and "cannot write" in err and "File too large" in err and "free some space" in err
    assert not (tmp_path / "p" / "slim.pt").exists()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp") or p.name == ".yoloslim.lock"]


@pytest.mark.slow
def test_sigterm_leaves_nothing_half_written(tmp_path):
    import signal
    import time

    child = run_cli(["data", "synth", f"out={tmp_path}/tea", "train=100000", "val=1", "imgsz=64"])
    deadline = time.time() + 60
    while not list(tmp_path.glob(".tea.partial-*/images/train/*.jpg")) and time.time() < deadline:
        time.sleep(0.1)  # wait until it is writing
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 143 and "terminated" in err
    assert list(tmp_path.iterdir()) == []  # neither the dataset nor its partial folder


def random_plan(graph, rng: random.Random, min_keep=1) -> Plan:
    """Any kept count >= min_keep per prunable group, equal across tied halves, random channel indices."""
    groups = [g for g in graph.groups() if not g.frozen_reasons]
    counts = {g.name: rng.randint(keep_floor(g.size, min_keep), g.size) for g in groups}
    for members in graph.tie_classes():
        live = [g for g in members if g.name in counts]  # frozen halves freeze their twins: none or all live
        if live:
            n = min(counts[g.name] for g in live)
            counts.update({g.name: n for g in live})
    kept = {g.name: sorted(rng.sample(range(g.size), counts[g.name])) for g in groups}
    return Plan(kept, {g.name: g.size for g in groups}, fingerprint(graph), {"fuzz": True})


@pytest.mark.parametrize("cfg", EVERY_CONFIG)
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


@pytest.mark.slow  # the fast tier exports and checks in test_export.py
@pytest.mark.parametrize("cfg", SMALL_CONFIGS)
def test_random_plan_sample_exports_and_matches_onnxruntime(cfg, tmp_path):
    from yoloslim.onnx_export import export_with_report

    model = build(cfg, seed=7)
    graph = build_graph(model)
    prune_in_place(model, graph, random_plan(graph, random.Random(cfg), min_keep=1))
    onnx, report = export_with_report(save_checkpoint(model, tmp_path / "fuzz.pt"), imgsz=64, runs=0)
    assert onnx.exists() and max(report["max_diff"].values()) < 1e-3
