"""data convert, tile and check against inputs a demanding user brings: odd file names, images annotated twice,
annotations that disagree with their images, segment/pose/obb labels, impossible scales, killed runs, missing
labels. Each class of problem is refused in one line, said in one warning line, or converted right; never silently
wrong, and nothing is written outside out=."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from yoloslim.cli import main
from yoloslim.convert import convert, tile
from yoloslim.data import check, label_path, synth


def image(path: Path, size=(64, 48), colour=(90, 140, 60)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def coco(path: Path, images, annotations=(), categories=({"id": 1, "name": "tree"},)) -> Path:
    spec = {"images": list(images), "annotations": list(annotations), "categories": list(categories)}
    path.write_text(json.dumps(spec))
    return path


def box(number, image_id, bbox, category=1, **extra) -> dict:
    return {"id": number, "image_id": image_id, "category_id": category, "bbox": bbox, **extra}


def voc(folder: Path, stem: str, filename: str, objects) -> None:
    rows = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax></bndbox>"
        "</object>"
        for n, a, b, c, d in objects
    )
    (folder / f"{stem}.xml").write_text(f"<annotation><filename>{filename}</filename>{rows}</annotation>")


def snapshot(folder: Path, skip: Path | None = None) -> dict:
    """Every path under folder (but skip) with its sha256: proof a run changed nothing there."""
    return {
        p: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
        if skip is None or not p.is_relative_to(skip)
    }


def labelled(out: Path) -> dict[str, list[list[float]]]:
    """{image path under images/: its label rows}, for every image of the dataset at out; every image has one."""
    found = {}
    for picture in sorted((out / "images").rglob("*.*")):
        label = label_path(picture)
        assert label.is_file(), f"{picture} has no label file"
        found[str(picture.relative_to(out / "images"))] = [
            [float(v) for v in row.split()] for row in label.read_text().splitlines()
        ]
    labels = sorted((out / "labels").rglob("*.txt"))
    assert len(labels) == len(found), "a label file without its image"
    return found


def pixels(row, size=(64, 48)) -> tuple:
    """A YOLO box row back in pixels (x1, y1, x2, y2), rounded."""
    _, cx, cy, w, h = row
    return tuple(
        round(v)
        for v in ((cx - w / 2) * size[0], (cy - h / 2) * size[1], (cx + w / 2) * size[0], (cy + h / 2) * size[1])
    )


# --- convert: where files go ---------------------------------------------------------------------------------------


def test_convert_writes_only_inside_out_whatever_a_file_name_says(tmp_path):
    """Absolute names (inside and outside images=), ../, a/../.., ./ and Windows separators: each image lands once
    inside a split of out= with its own label, and nothing else under tmp_path changes."""
    pics = tmp_path / "pics"
    names = {
        1: str(image(pics / "abs.jpg")),  # absolute, inside images=
        2: str(image(tmp_path / "elsewhere" / "far.jpg")),  # absolute, outside images=
        3: "../other/up.jpg",
        4: "x/../../other/deep.jpg",
        5: "./here.jpg",
        6: "sub\\win.jpg",
    }
    for name in ("other/up.jpg", "other/deep.jpg", "pics/here.jpg", "pics/sub/win.jpg"):
        image(tmp_path / name)
    source = coco(
        tmp_path / "ann.json",
        [{"id": i, "file_name": n} for i, n in names.items()],
        [box(i, i, [i, i, 10, 10]) for i in names],
    )
    before = snapshot(tmp_path)
    convert(source=source, images=pics, out=tmp_path / "out", val=0.5)
    assert snapshot(tmp_path, skip=tmp_path / "out") == before
    found = labelled(tmp_path / "out")
    stems = sorted(Path(p).stem for p in found)
    assert stems == ["abs", "deep", "far", "here", "up", "win"]
    assert all(p.split("/")[0] in ("train", "val") and ".." not in p for p in found)
    assert next(p for p in found if p.endswith("win.jpg")).endswith("sub/win.jpg")  # a Windows folder kept
    for path, rows in found.items():  # each image has its own box: x1 = its id
        number = next(i for i, n in names.items() if Path(n.replace("\\", "/")).stem == Path(path).stem)
        assert [pixels(r)[0] for r in rows] == [number], path


def test_voc_file_names_outside_the_source_stay_inside_out(tmp_path):
    (tmp_path / "voc").mkdir()
    image(tmp_path / "voc" / "b.jpg")
    voc(tmp_path / "voc", "a", str(image(tmp_path / "far" / "x.jpg")), [("tree", 2, 2, 10, 10)])
    voc(tmp_path / "voc", "b", "b.jpg", [("tree", 3, 3, 11, 11)])
    voc(tmp_path / "voc", "c", "../far/y.jpg", [("tree", 4, 4, 12, 12)])
    image(tmp_path / "far" / "y.jpg")
    before = snapshot(tmp_path)
    convert(source=tmp_path / "voc", out=tmp_path / "out", val=0.5)
    assert snapshot(tmp_path, skip=tmp_path / "out") == before
    found = labelled(tmp_path / "out")
    assert sorted(Path(p).name for p in found) == ["b.jpg", "x.jpg", "y.jpg"]
    assert all(p.count("/") == 1 for p in found)  # at the top of train/ or val/


@pytest.mark.parametrize("kind", ["coco", "voc"])
def test_images_that_would_share_a_label_file_each_get_their_own(tmp_path, capsys, kind):
    """a.jpg, a.png and sub/a.jpg: three images, three label files, each with its own box."""
    pics = tmp_path / "pics"
    files = ["a.jpg", "a.png", "sub/a.jpg", "c.jpg"]
    for f in files:
        image(pics / f)
    if kind == "coco":
        source = coco(
            tmp_path / "ann.json",
            [{"id": i, "file_name": f} for i, f in enumerate(files)],
            [box(i, i, [i + 1, 1, 10, 10]) for i in range(3)],
        )
    else:
        source = pics
        for i, f in enumerate(files):
            voc(pics, f"x{i}", f, [("tree", i + 2, 2, i + 11, 11)] if i < 3 else [])
    convert(source=source, images=pics, out=tmp_path / "out", val="c")
    found = labelled(tmp_path / "out")
    assert len(found) == 4
    lefts = sorted(pixels(rows[0])[0] for p, rows in found.items() if rows)
    assert lefts == [1, 2, 3]  # no box lost, none shared
    assert "renamed so that each has a label file of its own: a.png -> a_2.png" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["coco", "voc"])
def test_an_image_annotated_twice_is_one_image_with_both_box_sets(tmp_path, capsys, kind):
    """Two COCO images entries (or two VOC xml) for one file: one image in one split, all boxes, said once."""
    pics = tmp_path / "pics"
    for name in "abcd":
        image(pics / f"{name}.jpg")
    if kind == "coco":
        entries = [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "a.jpg"}]
        entries += [{"id": 3 + i, "file_name": f"{n}.jpg"} for i, n in enumerate("bcd")]
        source = coco(tmp_path / "ann.json", entries, [box(1, 1, [1, 1, 10, 10]), box(2, 2, [20, 20, 10, 10])])
    else:
        source = pics
        voc(pics, "a", "a.jpg", [("tree", 2, 2, 11, 11)])
        voc(pics, "a-copy", "a.jpg", [("tree", 21, 21, 30, 30)])
        for n in "bcd":
            voc(pics, n, f"{n}.jpg", [])
    for seed in range(6):  # whichever split it lands in, it lands in one
        out = tmp_path / f"out{seed}"
        convert(source=source, images=pics, out=out, val=0.5, seed=seed)
        found = labelled(out)
        copies = [p for p in found if Path(p).name == "a.jpg"]
        assert len(copies) == 1 and sorted(pixels(r)[0] for r in found[copies[0]]) == [1, 20]
    assert "1 image annotated more than once, the boxes merged: a.jpg" in capsys.readouterr().out


# --- convert: the image over the annotation --------------------------------------------------------------------


def test_boxes_that_cannot_be_labels_are_dropped_and_counted(tmp_path, capsys):
    """nan, inf, no area, wholly outside, the same box twice, crowd: dropped with one line of counts; a box that
    sticks out is clipped, never made full-size."""
    pics = tmp_path / "pics"
    image(pics / "a.jpg")
    image(pics / "b.jpg")
    bad = [[float("nan"), 1, 10, 10], [1, 1, float("inf"), 10], [30, 30, -10, 10], [30, 30, 0, 5], [300, 300, 9, 9]]
    annotations = [box(i, 1, b) for i, b in enumerate(bad)]
    annotations += [box(10, 1, [2, 2, 8, 8]), box(11, 1, [2, 2, 8, 8]), box(12, 1, [4, 4, 8, 8], iscrowd=1)]
    annotations += [box(13, 2, [50, 40, 30, 30])]  # sticks out of the 64 x 48 image
    source = coco(
        tmp_path / "ann.json", [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}], annotations
    )
    convert(source=source, images=pics, out=tmp_path / "out", val="b")
    found = labelled(tmp_path / "out")
    assert [pixels(r) for r in found["train/a.jpg"]] == [(2, 2, 10, 10)]
    assert [pixels(r) for r in found["val/b.jpg"]] == [(50, 40, 64, 48)]
    out = capsys.readouterr().out
    assert "7 boxes dropped: 2 with nan or inf coordinates" in out
    assert "2 without area" in out and "1 wholly outside their image" in out and "1 repeated" in out
    assert "1 marked iscrowd" in out


def test_voc_nan_and_inverted_boxes_are_dropped_and_counted(tmp_path, capsys):
    image(tmp_path / "a.jpg")
    image(tmp_path / "b.jpg")
    voc(tmp_path, "a", "a.jpg", [("tree", "nan", 2, 10, 10), ("tree", 20, 2, 10, 10), ("tree", 3, 3, 12, 12)])
    voc(tmp_path, "b", "b.jpg", [("tree", 2, 2, "inf", 10)])
    convert(source=tmp_path, out=tmp_path / "out", val="b")
    found = labelled(tmp_path / "out")
    assert [pixels(r) for r in found["train/a.jpg"]] == [(2, 2, 11, 11)] and found["val/b.jpg"] == []
    assert (
        "3 boxes dropped: 2 with nan or inf coordinates (e.g. a.xml object 1); 1 without area"
        in capsys.readouterr().out
    )


def test_a_voc_size_that_is_not_the_files_is_refused(tmp_path, capsys):
    image(tmp_path / "a.jpg")
    image(tmp_path / "b.jpg")
    voc(tmp_path, "a", "a.jpg", [("tree", 2, 2, 10, 10)])
    (tmp_path / "b.xml").write_text(
        "<annotation><filename>b.jpg</filename><size><width>640</width><height>480</height></size>"
        "<object><name>tree</name><bndbox><xmin>9</xmin><ymin>9</ymin><xmax>90</xmax><ymax>90</ymax></bndbox>"
        "</object></annotation>"
    )
    assert main(["data", "convert", f"source={tmp_path}", f"out={tmp_path / 'out'}", "val=0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "b.xml: 640x480 in <size>, 64x48 on disk" in err, err
    assert not (tmp_path / "out").exists()


def test_coco_ids_may_be_strings_and_sizes_may_be_missing(tmp_path):
    """String image and category ids (some exports write them), width/height absent or 0: converted right."""
    pics = tmp_path / "pics"
    for name, size in (("a.jpg", (64, 48)), ("b.jpg", (40, 80)), ("ñandú 树.jpg", (64, 48))):
        image(pics / name, size)
    source = coco(
        tmp_path / "ann.json",
        [
            {"id": "x1", "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": "x2", "file_name": "b.jpg", "width": 0, "height": 0},
            {"id": "x3", "file_name": "ñandú 树.jpg"},
        ],
        [box(1, "x1", [2, 2, 10, 10], "dog"), box(2, "x2", [4, 8, 20, 40], "árbol"), box(3, "x3", [1, 1, 5, 5], "dog")],
        [{"id": "dog", "name": "dog"}, {"id": "árbol", "name": "árbol"}],
    )
    data = convert(source=source, images=pics, out=tmp_path / "out", val="b")
    assert check(data)["names"] == {0: "dog", 1: "árbol"}  # string ids in their sorted order
    found = labelled(tmp_path / "out")
    assert found["val/b.jpg"] == [[1, 0.35, 0.35, 0.5, 0.5]]
    assert [pixels(r) for r in found["train/ñandú 树.jpg"]] == [(1, 1, 6, 6)]


COCO_REFUSED = [  # (images, annotations, categories) of the json, a fragment of the one-line refusal
    (
        [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}, {"id": 2, "file_name": "b.jpg"}],
        [box(1, 1, [10, 10, 20, 20])],
        None,
        "the json gives another size than the file for 1 image (a.jpg: 640x480 in the json, 64x48 on disk)",
    ),
    (
        [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        [box(1, 1, [1, 1, 5, 5])],
        [{"id": 1, "name": "tree"}, {"id": 1, "name": "bush"}],
        "categories 'tree' and 'bush' share the id 1; give each its own id",
    ),
    (
        [{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"}],
        [box(1, 1, [1, 1, 5, 5])],
        None,
        "two images share the id 1",
    ),
    (
        [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        [box(1, 1, [1, 1, 5, 5], "1")],
        [{"id": 1, "name": "bush"}, {"id": "2", "name": "tree"}],
        "annotation 1 names category '1', which categories: lacks",
    ),
    (
        [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        [box(1, 1, [True, 1, 5, 5])],
        None,
        "annotation 1 lacks a bbox of 4 numbers",
    ),
    ([{"id": 1, "file_name": "a.jpg"}, "b.jpg"], [], None, "must be lists of {...} entries"),
    ([{"id": [1], "file_name": "a.jpg"}], [], None, "needs an id (a whole number or a string) and a file_name"),
    ([{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}], [], [], "categories: is empty"),
    (
        [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        [],
        [{"id": 1, "name": None}],
        "lacks 'name'",
    ),
    ([{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "c.bmp"}], [], None, "images there share the stem c"),
]


@pytest.mark.parametrize("images,annotations,categories,message", COCO_REFUSED, ids=[c[3][:40] for c in COCO_REFUSED])
def test_coco_files_that_cannot_be_read_right_are_one_line(tmp_path, capsys, images, annotations, categories, message):
    pics = tmp_path / "pics"
    for name in ("a.jpg", "b.jpg", "c.jpg", "c.png"):
        image(pics / name)
    extra = {} if categories is None else {"categories": categories}
    source = coco(tmp_path / "ann.json", images, annotations, **extra)
    before = snapshot(tmp_path)
    argv = ["data", "convert", f"source={source}", f"images={pics}", f"out={tmp_path / 'out'}", "val=0.5"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("yoloslim: error: ") and message in err, err
    assert snapshot(tmp_path) == before


# --- convert: classes ----------------------------------------------------------------------------------------------


def test_class_order_is_said_and_names_sets_it(tmp_path, capsys):
    """VOC without names=: alphabetical, said in one line; names=: that order, for the ids in the label rows too;
    names differing only in case are one class (said), whichever way they are given."""
    image(tmp_path / "a.jpg")
    image(tmp_path / "b.jpg")
    voc(tmp_path, "a", "a.jpg", [("zebra", 2, 2, 10, 10), ("Zebra", 3, 3, 11, 11), ("zebra", 4, 4, 12, 12)])
    voc(tmp_path, "b", "b.jpg", [("ant", 2, 2, 10, 10)])
    data = convert(source=tmp_path, out=tmp_path / "alpha", val="b")
    out = capsys.readouterr().out
    assert "the VOC classes are numbered alphabetically (0 ant, 1 zebra); pass names=" in out
    assert "classes named alike (ignoring case) are one class: 'Zebra', 'zebra' -> 'zebra'" in out  # the most used
    assert check(data)["names"] == {0: "ant", 1: "zebra"}
    data = convert(source=tmp_path, out=tmp_path / "given", val="b", names="zebra,ant")
    assert "alphabetically" not in capsys.readouterr().out
    assert check(data)["names"] == {0: "zebra", 1: "ant"}
    found = labelled(tmp_path / "given")
    assert [r[0] for r in found["train/a.jpg"]] == [0, 0, 0] and [r[0] for r in found["val/b.jpg"]] == [1]
    assert main(["data", "convert", f"source={tmp_path}", f"out={tmp_path / 'x'}", "val=b", "names=zebra"]) == 2
    assert "names= lacks the classes ant" in capsys.readouterr().err


def test_coco_categories_named_alike_are_one_class(tmp_path, capsys):
    image(tmp_path / "a.jpg")
    image(tmp_path / "b.jpg")
    source = coco(
        tmp_path / "ann.json",
        [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        [box(1, 1, [1, 1, 5, 5], 7), box(2, 2, [1, 1, 5, 5], 3)],
        [{"id": 7, "name": "dog"}, {"id": 3, "name": "Dog "}],
    )
    data = convert(source=source, out=tmp_path / "out", val="b")
    assert check(data)["names"] == {0: "Dog"}
    assert "'Dog', 'dog' -> 'Dog'" in capsys.readouterr().out
    assert {r[0] for rows in labelled(tmp_path / "out").values() for r in rows} == {0}


# --- tile ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks")
    return {t: synth(root / t, train=4, val=2, imgsz=96, seed=0, task=t) for t in ("segment", "pose", "obb")}


@pytest.mark.parametrize("task,numbers", [("segment", None), ("obb", 9), ("pose", 14)])
def test_tile_keeps_each_tasks_labels(tasks, tmp_path, task, numbers):
    """The tiles of segment, obb and pose data hold polygons, rotated boxes and keypoints that the task's own
    check accepts, never boxes made of them."""
    data = tile(data=tasks[task], out=tmp_path / "tiles", size=64)
    counts = check(data, task=task)
    assert counts["train"]["objects"] > 0
    rows = [r.split() for p in (tmp_path / "tiles" / "labels").rglob("*.txt") for r in p.read_text().splitlines()]
    assert rows and all(len(r) == numbers if numbers else len(r) > 5 and len(r) % 2 for r in rows)
    if task == "pose":
        assert yaml.safe_load(data.read_text())["kpt_shape"] == [3, 3]


def scene(tmp_path, rows, size=(100, 80), extra="") -> Path:
    """A dataset of one size[0] x size[1] image (train and val) with these label rows."""
    root = tmp_path / "scene"
    for split in ("train", "val"):
        image(root / "images" / split / "s.png", size)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split / "s.txt").write_text("".join(r + "\n" for r in rows))
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: [tree]\n{extra}")
    return root / "data.yaml"


def tile_rows(out: Path, name: str) -> list[list[float]]:
    label = (out / "labels" / "train" / name).with_suffix(".txt")
    return [[float(v) for v in r.split()] for r in label.read_text().splitlines()]


def corners(row) -> list[tuple]:
    """A label row's points in the pixels of a 64 px tile, rounded."""
    return [(round(row[i] * 64, 3), round(row[i + 1] * 64, 3)) for i in range(1, len(row) - 1, 2)]


def test_tile_clips_polygons_refits_rotated_boxes_and_hides_cut_keypoints(tmp_path):
    """Exact geometry on one 100 x 80 image cut into 64 px tiles at x 0, 18, 36 and y 0, 16."""
    square = "0 0.5 0.25 0.8 0.25 0.8 0.75 0.65 0.75 0.5 0.75"  # a polygon: x 50..80, y 20..60 px
    data = tile(data=scene(tmp_path / "s", [square]), out=tmp_path / "seg", size=64, overlap=0.5, min_visible=0.4)
    check(data, task="segment")
    (whole,) = tile_rows(tmp_path / "seg", "s_36_0.png")  # wholly inside: moved, not changed
    assert corners(whole) == [(14, 20), (44, 20), (44, 60), (29, 60), (14, 60)]
    (cut,) = tile_rows(tmp_path / "seg", "s_0_0.png")  # x 0..64 sees x 50..64 of it (0.47 of its area)
    assert sorted(set(corners(cut))) == [(50, 20), (50, 60), (64, 20), (64, 60)]

    diamond = "0 0.4 0.5 0.6 0.25 0.8 0.5 0.6 0.75"  # a rotated box: corners (40, 40) (60, 20) (80, 40) (60, 60)
    data = tile(data=scene(tmp_path / "o", [diamond]), out=tmp_path / "obb", size=64, overlap=0.5)
    check(data, task="obb")
    (whole,) = tile_rows(tmp_path / "obb", "s_36_0.png")
    assert corners(whole) == [(4, 40), (24, 20), (44, 40), (24, 60)]
    (cut,) = tile_rows(tmp_path / "obb", "s_0_0.png")  # its corner at x 80 cut off (0.68 of it left)
    assert sorted(corners(cut)) == [(40, 20), (40, 60), (64, 20), (64, 60)]  # the smallest rectangle in the tile

    pose = "0 0.6 0.5 0.2 0.25 0.52 0.5 2 0.68 0.5 2 0 0 0"  # box x 50..70, y 30..50; keypoints at x 52, 68; hidden
    data = tile(
        data=scene(tmp_path / "p", [pose], extra="kpt_shape: [3, 3]\n"), out=tmp_path / "pose", size=64, overlap=0.5
    )
    check(data, task="pose")
    (whole,) = tile_rows(tmp_path / "pose", "s_36_0.png")
    assert [round(v * 64, 3) for v in whole[5:]] == [16, 40, 128, 32, 40, 128, 0, 0, 0]  # visible 2 -> 2 * 64
    (cut,) = tile_rows(tmp_path / "pose", "s_0_0.png")  # box x 50..64 (0.7 of it); keypoint at 68 outside
    assert [round(v * 64, 3) for v in cut[1:5]] == [57, 40, 14, 20]
    assert [round(v * 64, 3) for v in cut[5:]] == [52, 40, 128, 0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize(
    "argument,size,message",
    [
        ("scale=0.05", (64, 64), "scale=0.05 makes 2 images smaller than 10 px a side (e.g. s.png: 64x64 -> 3x3)"),
        ("scale=1340", (10, 10), "scale=1340 makes 2 images larger than 179 MP (e.g. s.png: 10x10 -> 13400x13400)"),
        ("overlap=0.99", (640, 480), "overlap=0.99 would cut the 1 train images into"),
    ],
)
def test_tile_refuses_impossible_scales_and_overlaps_before_writing(tmp_path, capsys, argument, size, message):
    data = scene(tmp_path, ["0 0.5 0.5 0.4 0.4"], size)
    before = snapshot(tmp_path)
    assert main(["data", "tile", f"data={data}", f"out={tmp_path / 'tiles'}", "size=32", argument]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert snapshot(tmp_path) == before  # neither tiles nor a partial folder


def test_tile_keeps_same_stem_images_apart(tmp_path, capsys):
    """a.jpg and a.png in one folder (they share a.txt, as Ultralytics reads them: said), cam1/b.jpg and cam2/b.jpg:
    every tile has a label file of its own with its image's rows."""
    root = tmp_path / "ds"
    rows = {"a.jpg": 0.2, "a.png": 0.2, "cam1/b.jpg": 0.4, "cam2/b.jpg": 0.6}
    for name, x in rows.items():
        image(root / "images" / "train" / name, (80, 80))
        label = label_path(root / "images" / "train" / name)
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(f"0 {x} 0.5 0.1 0.1\n")
    image(root / "images" / "val" / "v.jpg", (80, 80))
    (root / "labels" / "val").mkdir(parents=True)
    (root / "labels" / "val" / "v.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: [tree]\n")
    tile(data=root / "data.yaml", out=tmp_path / "tiles", size=64, overlap=0.5)
    found = labelled(tmp_path / "tiles")
    whole = {p: r for p, r in found.items() if p.startswith("train/") and p.endswith(("_0_0.jpg", "_0_0.png"))}
    assert sorted(whole) == ["train/a_0_0.jpg", "train/a_2_0_0.png", "train/cam1/b_0_0.jpg", "train/cam2/b_0_0.jpg"]
    assert [round(whole[p][0][1], 3) for p in sorted(whole)] == [0.25, 0.25, 0.5, 0.75]  # each its own box
    out = capsys.readouterr().out
    assert "a.png -> a_2.png" in out and "1 label file is shared by several images (labels/train/a.txt" in out


def test_the_next_run_removes_partial_folders_killed_runs_left(tmp_path, tiny_data):
    """Left by a dead process: removed; held by a live one, or not named for this out=: kept."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = tmp_path / f".tiles.partial-{done.pid}"
        kept = [tmp_path / f".tiles.partial-{live.pid}", tmp_path / ".other.partial-1", tmp_path / ".tiles.partial-x"]
        for folder in (dead, *kept):
            image(folder / "images" / "train" / "left.jpg")
        tile(data=tiny_data, out=tmp_path / "tiles", size=32)
        assert not dead.exists() and all(k.exists() for k in kept)
    finally:
        live.kill()
        live.wait()


@pytest.mark.slow  # child processes
def test_a_killed_tile_leaves_nothing_behind_after_the_next_run(tmp_path, tiny_data):
    argv = ["data", "tile", f"data={tiny_data}", f"out={tmp_path / 'tiles'}", "size=32"]
    code = f"from yoloslim.cli import main; main({argv!r})"
    slow = "import time, PIL.Image as I; save = I.Image.save\n"  # slowed, to be killed while it writes
    slow += "I.Image.save = lambda *a, **k: (time.sleep(0.2), save(*a, **k))"
    child = subprocess.Popen([sys.executable, "-c", f"{slow}\n{code}"], env={**os.environ, "YOLO_OFFLINE": "1"})
    deadline = time.time() + 60
    while not list(tmp_path.glob(".tiles.partial-*/images/train/*")) and time.time() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert list(tmp_path.glob(".tiles.partial-*"))  # what a kill leaves
    tile(data=tiny_data, out=tmp_path / "tiles", size=32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiles"]


# --- check ---------------------------------------------------------------------------------------------------------


def dataset(tmp_path, labels: dict) -> Path:
    """Two train images and one val image; labels: {image stem: rows, or None for no label file}."""
    root = tmp_path / "ds"
    for split, stem in (("train", "a"), ("train", "b"), ("val", "v")):
        image(root / "images" / split / f"{stem}.jpg", (80, 80))
        if labels.get(stem) is not None:
            (root / "labels" / split).mkdir(parents=True, exist_ok=True)
            (root / "labels" / split / f"{stem}.txt").write_text(labels[stem])
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: [tree]\n")
    return root / "data.yaml"


def test_check_refuses_a_dataset_with_no_label_files_and_says_where_it_looked(tmp_path, capsys):
    data = dataset(tmp_path, {})
    assert main(["data", "check", f"data={data}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no label files found for any of its images" in err
    assert str(tmp_path / "ds" / "labels" / "train" / "a.txt") in err


def test_check_refuses_train_labels_with_no_object(tmp_path, capsys):
    data = dataset(tmp_path, {"a": "", "b": "", "v": "0 0.5 0.5 0.2 0.2\n"})
    assert main(["data", "check", f"data={data}"]) == 2
    assert "train: none of its 2 images has a labelled object" in capsys.readouterr().err


def test_check_warns_of_missing_label_files_with_counts(tmp_path, capsys):
    box_row = "0 0.5 0.5 0.2 0.2\n"
    counts = check(dataset(tmp_path, {"a": box_row, "v": box_row}))
    assert counts["train"]["backgrounds"] == 1
    out = capsys.readouterr().out
    assert "train: 1 of 2 images have no label file (e.g. labels/train/b.txt)" in out
    shutil.rmtree(tmp_path / "ds")
    check(dataset(tmp_path, {"a": box_row, "b": box_row}))
    out = capsys.readouterr().out
    assert "val: none of its 1 images has a label file" in out and "validation has nothing to score" in out
