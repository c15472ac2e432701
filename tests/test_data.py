"""yoloslim.data: the synthetic dataset writer and the data.yaml checker (tiny datasets, fast)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from yoloslim import YoloslimError
from yoloslim.data import check, synth

TINY = dict(train=8, val=4, imgsz=64)


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes), data.yaml left out (it names its folder)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "data.yaml"
    }


def label_rows(folder: Path) -> list[list[str]]:
    return [line.split() for p in sorted(folder.glob("labels/*/*.txt")) for line in p.read_text().splitlines()]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """One tiny synthetic dataset shared by the read-only tests; returns its data.yaml."""
    return synth(out=tmp_path_factory.mktemp("tiny") / "tea", **TINY)


def copy_dataset(data_yaml: Path, dest: Path) -> Path:
    """A private copy of a dataset whose data.yaml relies on its own folder (no path: key)."""
    source = data_yaml.parent
    for p in source.rglob("*"):
        if p.is_file():
            target = dest / p.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(p.read_bytes())
    spec = yaml.safe_load(data_yaml.read_text())
    del spec["path"]
    (dest / "data.yaml").write_text(yaml.safe_dump(spec))
    return dest / "data.yaml"


# --- synth --------------------------------------------------------------------------------------


def test_same_seed_gives_identical_files(tmp_path, tiny):
    again = synth(out=tmp_path / "again", **TINY)
    first, second = files_of(tiny.parent), files_of(again.parent)
    assert len(first) == 2 * (TINY["train"] + TINY["val"])
    assert first == second


def test_different_seeds_differ(tmp_path, tiny):
    other = synth(out=tmp_path / "other", seed=1, **TINY)
    first, second = files_of(tiny.parent), files_of(other.parent)
    assert first.keys() == second.keys()
    assert all(first[k] != second[k] for k in first if k.endswith(".jpg"))


def test_layout_and_label_values(tiny):
    root = tiny.parent
    spec = yaml.safe_load(tiny.read_text())
    assert spec["path"] == str(root) and Path(spec["path"]).is_absolute()
    assert (spec["train"], spec["val"], spec["names"]) == ("images/train", "images/val", {0: "bud", 1: "leaf"})
    for split, count in (("train", TINY["train"]), ("val", TINY["val"])):
        images = sorted(p.stem for p in (root / "images" / split).iterdir())
        labels = sorted(p.stem for p in (root / "labels" / split).iterdir())
        assert len(images) == count and images == labels
        assert all(p.suffix == ".jpg" for p in (root / "images" / split).iterdir())
    import cv2

    image = cv2.imread(str(next((root / "images" / "train").iterdir())))
    assert image.shape == (64, 64, 3)
    rows = label_rows(root)
    assert rows, "a tiny dataset should still have some objects"
    for row in rows:
        assert len(row) == 5 and row[0] in ("0", "1")
        cx, cy, w, h = map(float, row[1:])
        assert 0 < w <= 1 and 0 < h <= 1
        assert w * 64 >= 2 and h * 64 >= 2  # boxes too small after clipping are dropped
        # the box lies inside the image: it was clipped to the visible part
        assert -1e-6 <= cx - w / 2 and cx + w / 2 <= 1 + 1e-6
        assert -1e-6 <= cy - h / 2 and cy + h / 2 <= 1 + 1e-6


def test_larger_sample_has_empty_images_and_both_classes(tmp_path):
    data = synth(out=tmp_path / "sample", train=60, val=1, imgsz=64)
    labels = list((data.parent / "labels" / "train").glob("*.txt"))
    empty = [p for p in labels if not p.read_text().strip()]
    assert 1 <= len(empty) <= 20  # about 10% empty, never all
    classes = {row[0] for row in label_rows(data.parent)}
    assert classes == {"0", "1"}


def test_refuses_non_empty_target_then_overwrites(tmp_path):
    target = tmp_path / "tea"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(YoloslimError, match="overwrite=True"):
        synth(out=target, **TINY)
    assert (target / "keep.txt").read_text() == "mine"  # refused before touching it
    data = synth(out=target, overwrite=True, **TINY)
    assert data == target / "data.yaml" and data.is_file()
    assert not (target / "keep.txt").exists()


def test_writes_nothing_outside_target(tmp_path):
    (tmp_path / "neighbour.txt").write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    synth(out=tmp_path / "tea", **TINY)
    after = sorted(p.name for p in tmp_path.iterdir())
    assert after == sorted(before + ["tea"])


def test_crash_leaves_no_partial_dataset(tmp_path, monkeypatch):
    import yoloslim.data as data_module

    calls = []

    def failing_draw(rng, size, task="detect"):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        return original(rng, size, task)

    original = data_module.draw_image
    monkeypatch.setattr(data_module, "draw_image", failing_draw)
    with pytest.raises(RuntimeError, match="simulated crash"):
        synth(out=tmp_path / "tea", **TINY)
    assert list(tmp_path.iterdir()) == []


def test_overwrite_never_replaces_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "work.txt").write_text("precious")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(YoloslimError, match="refusing to replace"):
        synth(out=".", overwrite=True, **TINY)
    assert (tmp_path / "work.txt").read_text() == "precious"


@pytest.mark.parametrize(
    "bad, word",
    [
        (dict(train=0), "train"),
        (dict(val=-1), "val"),
        (dict(imgsz=16), "imgsz"),
        (dict(train=2.5), "train"),
        (dict(seed=-3), "seed"),
        (dict(overwrite="maybe"), "overwrite"),
    ],
)
def test_bad_arguments_raise_clear_error(tmp_path, bad, word):
    with pytest.raises(YoloslimError, match=word) as info:
        synth(out=tmp_path / "tea", **{**TINY, **bad})
    assert "\n" not in str(info.value)
    assert not (tmp_path / "tea").exists()


# --- check --------------------------------------------------------------------------------------


def test_check_passes_on_synth_output(tiny, capsys):
    counts = check(data=str(tiny))
    assert counts["train"]["images"] == TINY["train"] and counts["val"]["images"] == TINY["val"]
    assert counts["train"]["objects"] + counts["val"]["objects"] == len(label_rows(tiny.parent))
    assert counts["names"] == {0: "bud", 1: "leaf"}
    assert "OK" in capsys.readouterr().out


def test_check_accepts_txt_list_and_list_of_folders(tiny, tmp_path):
    data = copy_dataset(tiny, tmp_path / "ds")
    images = sorted((tmp_path / "ds" / "images" / "train").iterdir())
    (tmp_path / "ds" / "train.txt").write_text("".join(f"./images/train/{p.name}\n" for p in images[:5]))
    spec = yaml.safe_load(data.read_text())
    spec["train"], spec["val"] = "train.txt", ["images/val", "images/train"]
    data.write_text(yaml.safe_dump(spec))
    counts = check(data=data)
    assert counts["train"]["images"] == 5
    assert counts["val"]["images"] == TINY["train"] + TINY["val"]


def broken(tiny, tmp_path, edit) -> Path:
    """A copy of the tiny dataset with `edit(root)` applied; returns its data.yaml."""
    data = copy_dataset(tiny, tmp_path / "ds")
    edit(data.parent)
    return data


def first_label(root: Path) -> Path:
    return sorted((root / "labels" / "train").glob("*.txt"))[0]


def set_row(root: Path, row: str) -> None:
    label = first_label(root)
    label.write_text(label.read_text() + row + "\n")


def set_yaml(root: Path, **changes) -> None:
    spec = yaml.safe_load((root / "data.yaml").read_text())
    spec.update(changes)
    spec = {k: v for k, v in spec.items() if v is not None}
    (root / "data.yaml").write_text(yaml.safe_dump(spec))


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda root: (root / "data.yaml").unlink(), "not found"),
        (lambda root: (root / "data.yaml").write_text("train: [images/train\nval: x"), "not valid YAML"),
        (lambda root: (root / "data.yaml").write_text("train: images/train\nval: images/val\n"), "lacks names:"),
        (lambda root: shutil.rmtree(root / "images" / "val"), "not found"),
        (lambda root: [p.unlink() for p in (root / "images" / "val").iterdir()], "no images"),
        (lambda root: set_yaml(root, nc=3), "says nc: 3 but names: lists 2 classes"),
        (lambda root: set_yaml(root, nc="two"), "nc: two must be a whole number"),
        (
            lambda root: [p.write_text("7 0.5 0.5 0.2 0.2\n") for p in (root / "labels" / "val").iterdir()],
            "none of its 4 images is usable",
        ),
        (
            lambda root: [p.write_bytes(b"not an image") for p in (root / "images" / "val").iterdir()],
            "none of its 4 images is usable",
        ),
    ],
    ids=[
        "missing-yaml",
        "bad-yaml",
        "no-names",
        "missing-split",
        "empty-split",
        "nc-vs-names",
        "nc-not-a-number",
        "every-row-bad",
        "every-image-bad",
    ],
)
def test_check_fails_with_clear_message(tiny, tmp_path, edit, expected):
    data = broken(tiny, tmp_path, edit)
    with pytest.raises(YoloslimError) as info:
        check(data=data)
    message = str(info.value)
    assert expected in message and "\n" not in message


@pytest.mark.parametrize(
    "row, expected",
    [
        ("1 0.5 0.5 0.2", "malformed label rows"),
        ("0 0.5 0.5 two 0.2", "malformed label rows"),
        ("0 0.5 1.7 0.2 0.2", "outside 0..1"),
        ("7 0.5 0.5 0.2 0.2", "unknown class ids"),
    ],
)
def test_a_bad_row_drops_its_image_with_a_warning(tiny, tmp_path, capsys, row, expected):
    """As Ultralytics: the image with the bad row is dropped (named, with its line), the rest is used."""
    data = broken(tiny, tmp_path, lambda root: set_row(root, row))
    label = first_label(data.parent)
    counts = check(data=data)
    out = capsys.readouterr().out
    assert counts["train"]["images"] == TINY["train"] - 1 and counts["train"]["dropped"] == 1
    assert expected in out and f"labels/train/{label.name}:{len(label.read_text().splitlines())}" in out
    assert f"1 of {TINY['train']} images dropped" in out


def test_check_names_truncated_and_fake_images_and_drops_them(tiny, tmp_path, capsys):
    def damage(root):
        images = sorted((root / "images" / "train").glob("*.jpg"))
        images[0].write_bytes(images[0].read_bytes()[:300])  # truncated: the header reads, the pixels do not
        images[1].write_text("a text file named .jpg\n")

    data = broken(tiny, tmp_path, damage)
    before = {p: p.read_bytes() for p in data.parent.rglob("*") if p.is_file()}
    counts = check(data=data)
    out = capsys.readouterr().out
    assert counts["train"]["dropped"] == 2 and counts["train"]["images"] == TINY["train"] - 2
    assert "tea_00000.jpg" in out and "tea_00001.jpg" in out and "images that cannot be read" in out
    assert {p: p.read_bytes() for p in data.parent.rglob("*") if p.is_file()} == before  # read-only


def test_check_accepts_what_ultralytics_accepts(tiny, tmp_path, monkeypatch):
    """Polygon rows (Ultralytics makes them boxes), nc: without names:, and a relative path: found under
    Ultralytics' datasets folder; Ultralytics' own dataset check agrees on each."""
    import ultralytics.utils
    from ultralytics.data.utils import check_det_dataset

    datasets = tmp_path / "datasets"
    data = copy_dataset(tiny, datasets / "mine")
    label = first_label(data.parent)
    label.write_text("0 0.1 0.1 0.4 0.1 0.3 0.5\n1 0.5 0.5 0.9 0.5 0.9 0.9 0.5 0.9\n")
    set_yaml(data.parent, path="mine", names=None, nc=2)
    monkeypatch.setattr(ultralytics.utils, "DATASETS_DIR", datasets)
    monkeypatch.chdir(tmp_path)  # "mine" is not under the current folder
    counts = check(data=data)
    assert counts["names"] == {0: "class_0", 1: "class_1"}
    assert counts["train"]["images"] == TINY["train"] and counts["train"]["dropped"] == 0
    import ultralytics.data.utils

    monkeypatch.setattr(ultralytics.data.utils, "DATASETS_DIR", datasets)
    assert check_det_dataset(str(data))["nc"] == 2


@pytest.mark.slow  # a child process
def test_cli_check_passes_on_good_dataset(tiny):
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "yoloslim.cli", "data", "check", f"data={tiny}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
