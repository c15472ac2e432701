"""data convert (Pascal VOC xml, COCO json -> YOLO) and data tile, on the generated dataset written out in
those formats: the labels that come back must be the ones that went in."""

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from yoloslim.convert import convert, starts, tile
from yoloslim.data import check, label_path


def tree(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def yolo_boxes(image: Path) -> list[tuple]:
    rows = label_path(image).read_text().split("\n") if label_path(image).exists() else []
    return sorted(tuple(float(v) for v in row.split()) for row in rows if row.strip())


def pixel_boxes(image: Path):
    """(class, x1, y1, x2, y2) in pixels, from the YOLO label of image."""
    width, height = Image.open(image).size
    for c, cx, cy, w, h in yolo_boxes(image):
        yield int(c), (cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height


@pytest.fixture(scope="module")
def labelled(tiny_data):
    """The tiny dataset's images, each with its boxes: {file name: (path, [(class, cx, cy, w, h)])}."""
    images = sorted((tiny_data.parent / "images").rglob("*.jpg"))
    return {p.name: (p, yolo_boxes(p)) for p in images}


def close(a: list[tuple], b: list[tuple], tol: float) -> bool:
    return len(a) == len(b) and all(
        x[0] == y[0] and max(abs(u - v) for u, v in zip(x[1:], y[1:])) < tol for x, y in zip(a, b)
    )


def test_voc_folder_converts_to_the_same_labels(labelled, tmp_path):
    source = tmp_path / "voc"
    source.mkdir()
    names = ["bud", "leaf"]
    for name, (image, _) in labelled.items():
        shutil.copy(image, source / name)
        objects = "".join(
            f"<object><name>{names[c]}</name><difficult>0</difficult><bndbox><xmin>{x1 + 1:.3f}</xmin>"
            f"<ymin>{y1 + 1:.3f}</ymin><xmax>{x2 + 1:.3f}</xmax><ymax>{y2 + 1:.3f}</ymax></bndbox></object>"
            for c, x1, y1, x2, y2 in pixel_boxes(image)
        )
        stale = "renamed.jpg"  # labelling tools leave <filename> stale; the xml's stem finds the image
        (source / f"{Path(name).stem}.xml").write_text(
            f"<annotation><filename>{stale}</filename>{objects}</annotation>"
        )
    before = tree(source)
    data = convert(source=source, out=tmp_path / "yolo", val="0.25", seed=1)
    assert tree(source) == before  # the input is left alone
    counts = check(data)
    assert counts["names"] == {0: "bud", 1: "leaf"}
    assert counts["train"]["images"] + counts["val"]["images"] == len(labelled)
    assert counts["val"]["images"] == round(0.25 * len(labelled))
    for image in (tmp_path / "yolo" / "images").rglob("*.jpg"):
        assert close(yolo_boxes(image), labelled[image.name][1], 1e-4), image.name


def test_coco_json_with_unordered_sparse_ids_converts_to_the_same_labels(labelled, tmp_path):
    """Category ids 7 and 3, not COCO's 1..91: classes follow the ids' order (3 -> 0, 7 -> 1)."""
    ids = {0: 3, 1: 7}  # the dataset's class -> its COCO category id
    spec = {"images": [], "annotations": [], "categories": [{"id": 7, "name": "leaf"}, {"id": 3, "name": "bud"}]}
    for number, (name, (image, _)) in enumerate(labelled.items()):
        width, height = Image.open(image).size
        size = {"width": width, "height": height} if number % 2 else {}  # some exports leave the size out
        spec["images"].append({"id": number, "file_name": f"pics/{name}", **size})
        for c, x1, y1, x2, y2 in pixel_boxes(image):
            box = [x1, y1, x2 - x1, y2 - y1]
            spec["annotations"].append(
                {"id": len(spec["annotations"]), "image_id": number, "category_id": ids[c], "bbox": box}
            )
    (tmp_path / "pics").mkdir()
    for name, (image, _) in labelled.items():
        shutil.copy(image, tmp_path / "pics" / name)
    (tmp_path / "train.json").write_text(json.dumps(spec))
    first = next(iter(labelled))
    data = convert(source=tmp_path / "train.json", out=tmp_path / "yolo", val=Path(first).stem)
    counts = check(data)
    assert counts["names"] == {0: "bud", 1: "leaf"}
    assert counts["val"]["images"] == 1
    assert (tmp_path / "yolo" / "images" / "val" / "pics" / first).is_file()
    for image in (tmp_path / "yolo" / "images").rglob("*.jpg"):
        assert close(yolo_boxes(image), labelled[image.name][1], 1e-4), image.name


def test_tiles_hold_every_box_clipped_and_drop_remnants(tmp_path):
    """One 100 x 80 image cut into 64 px tiles: boxes inside a tile come back in its pixels, boxes cut by its
    edge are clipped when half of them is inside and dropped otherwise; val tiles only overlap to cover."""
    root = tmp_path / "big"
    boxes = [(0, 2, 2, 20, 20), (0, 50, 30, 80, 50), (0, 90, 60, 99, 79)]  # class, x1, y1, x2, y2 in pixels
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        Image.new("RGB", (100, 80), (90, 140, 60)).save(root / "images" / split / "scene.png")
        rows = [f"{c} {(a + b) / 200} {(y + z) / 160} {(b - a) / 100} {(z - y) / 80}\n" for c, a, y, b, z in boxes]
        (root / "labels" / split / "scene.txt").write_text("".join(rows))
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: [tree]\n")
    data = tile(data=root / "data.yaml", out=tmp_path / "tiles", size=64, overlap=0.5, min_visible=0.5)
    assert starts(100, 64, 32) == [0, 18, 36] and starts(80, 64, 32) == [0, 16]  # spread, the last one flush
    assert starts(100, 64, 64) == [0, 36]  # val: as few as cover the side
    train = sorted((tmp_path / "tiles" / "images" / "train").iterdir())
    assert {p.name for p in train} == {f"scene_{x}_{y}.png" for y in (0, 16) for x in (0, 18, 36)}
    assert len(list((tmp_path / "tiles" / "images" / "val").iterdir())) == 4
    for image in train:
        x, y = (int(v) for v in image.stem.split("_")[1:])
        assert Image.open(image).size == (64, 64)
        expected = []
        for c, x1, y1, x2, y2 in boxes:
            cut = max(x1, x), max(y1, y), min(x2, x + 64), min(y2, y + 64)
            if (
                cut[2] > cut[0]
                and cut[3] > cut[1]
                and (cut[2] - cut[0]) * (cut[3] - cut[1]) >= 0.5 * (x2 - x1) * (y2 - y1)
            ):
                expected.append((c, cut[0] - x, cut[1] - y, cut[2] - x, cut[3] - y))
        assert close(sorted(pixel_boxes(image)), sorted(expected), 1e-3), image.name
    assert check(data)["train"]["objects"] > 0


def test_tiles_train_with_stock_ultralytics(tiny_data, tmp_path):
    from ultralytics.data.utils import check_det_dataset

    data = tile(data=tiny_data, out=tmp_path / "tiles", size=32, overlap=0.25, scale=1.0)
    info = check_det_dataset(str(data))
    assert info["nc"] == 2 and Path(info["train"]).is_dir()
    counts = check(data)
    assert counts["train"]["images"] == 16 * len(starts(64, 32, 24)) ** 2
    assert counts["val"]["images"] == 8 * len(starts(64, 32, 32)) ** 2
