"""Datasets from other tools: `data convert` (Pascal VOC xml or COCO json -> a YOLO dataset) and `data tile`
(large images -> overlapping tiles a detector sees at its input size).

Both write a new dataset folder (images/, labels/, data.yaml) in one rename at the end and never touch their
input. COCO labels are made by Ultralytics' own converter; VOC boxes follow Ultralytics' VOC conversion.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image
from ultralytics.data.converter import convert_coco
from ultralytics.utils import LOGGER as ULTRALYTICS_LOGGER

from . import YoloslimError
from .args import as_list, verb
from .data import image_problem, is_image, read_dataset
from .io import new_folder
from .log import LOGGER

MIN_BOX_PX = 2  # a clipped box narrower than this teaches nothing
SAVE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}  # PIL writes these; others go to .png


@dataclass
class Item:
    """One image, its boxes as YOLO rows (class, cx, cy, w, h; normalised) and its path under images=."""

    image: Path
    rows: list[tuple]
    relative: Path


@contextlib.contextmanager
def large_images():
    """Let PIL open aerial and satellite scenes (its decompression-bomb limit is ~180 MP), for this block only."""
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


@verb("data convert")
def convert(
    source: str | Path | None = None,
    images: str | Path | None = None,
    out: str | Path = "datasets/converted",
    val: float | str = 0.2,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Pascal VOC xml or COCO json -> a YOLO dataset at out (images/, labels/, data.yaml); returns data.yaml.

    source: a folder of VOC .xml files (or one .xml), or a COCO .json. images: the folder the annotations'
    file names are relative to (default: the source's folder). val: the share of images held out for
    validation (split by image, shuffled by seed), or the names of the validation images (a,b: file names
    or stems). Classes are numbered in the order of the COCO categories' ids, or alphabetically for VOC.
    Boxes are clipped to their image. Images are copied, not linked, so the dataset is yours to change."""
    if not source:
        raise YoloslimError("pass source=, a folder of Pascal VOC .xml files or a COCO .json file")
    source = Path(source).expanduser()
    if not source.exists():
        raise YoloslimError(f"source={source} not found; give a folder of VOC .xml files or a COCO .json file")
    root = Path(images).expanduser() if images else (source if source.is_dir() else source.parent)
    if not root.is_dir():
        raise YoloslimError(f"images={root} is not a folder; give the folder the annotations' images are in")
    if source.suffix.lower() == ".json":
        names, items = read_coco(source, root)
    elif source.suffix.lower() == ".xml" or source.is_dir():
        names, items = read_voc(source, root)
    else:
        raise YoloslimError(f"source={source} is neither a .json (COCO) nor .xml files (Pascal VOC)")
    with large_images():
        bad = [f"{item.image.name} ({problem})" for item in items if (problem := image_problem(item.image))]
    if bad:
        raise YoloslimError(
            f"{len(bad)} images cannot be read: {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}; "
            "replace them or remove them from the annotations"
        )
    splits = split_items(items, val, seed)
    out = Path(out).expanduser().absolute()
    with new_folder(out, overwrite, inputs=[source, root]) as partial:
        for split, part in splits.items():
            for item in part:
                image = partial / "images" / split / item.relative
                image.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(item.image, image)
                write_rows(partial / "labels" / split / item.relative.with_suffix(".txt"), item.rows)
        header = f"# yoloslim data convert source={source} val={val} seed={seed}\n"
        write_yaml(partial, out, names, header)
    boxes = sum(len(i.rows) for i in items)
    LOGGER.info(
        f"convert: {len(items)} images ({len(splits['train'])} train, {len(splits['val'])} val), {boxes} boxes, "
        f"{len(names)} classes ({', '.join(names)}) -> {out / 'data.yaml'}"
    )
    return out / "data.yaml"


def read_voc(source: Path, root: Path) -> tuple[list[str], list[Item]]:
    files = sorted(source.glob("*.xml")) if source.is_dir() else [source]
    if not files:
        raise YoloslimError(f"source={source} holds no .xml files; give a folder of Pascal VOC annotations")
    parsed = []
    for file in files:
        try:
            tree = ET.parse(file).getroot()
        except ET.ParseError as e:
            raise YoloslimError(f"{file} is not valid XML ({e}); fix or remove it") from None
        if tree.tag != "annotation":
            raise YoloslimError(f"{file} is not a Pascal VOC annotation (root <{tree.tag}>, not <annotation>)")
        parsed.append((file, tree))
    names = sorted({(o.findtext("name") or "").strip() for _, t in parsed for o in t.iter("object")} - {""})
    if not names:
        raise YoloslimError(f"no <object> with a <name> in the .xml files of {source}; nothing to convert")
    items = []
    for file, tree in parsed:
        image = find_image(root, tree.findtext("filename") or "", file.stem, file)
        width, height = image_size(image)
        rows = []
        for number, obj in enumerate(tree.iter("object"), 1):
            name = (obj.findtext("name") or "").strip()
            if not name:
                raise YoloslimError(f"{file} object {number} has no <name>; name its class or remove it")
            box = obj.find("bndbox")
            try:
                x1, y1, x2, y2 = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            except (AttributeError, TypeError, ValueError):
                raise YoloslimError(f"{file} object {number}: <bndbox> lacks numeric xmin/ymin/xmax/ymax") from None
            # VOC pixels count from 1 (Ultralytics' VOC conversion subtracts 1 from the centre)
            rows += clipped(names.index(name), x1 - 1, y1 - 1, x2 - 1, y2 - 1, width, height)
        items.append(Item(image, rows, image.relative_to(root)))
    return names, items


def read_coco(source: Path, root: Path) -> tuple[list[str], list[Item]]:
    """Labels by Ultralytics' convert_coco, fed a copy of the json whose category ids are renumbered 1..n
    (it subtracts 1 and assumes COCO's numbering otherwise; exports from other tools start at 0 or skip ids)."""

    try:
        spec = json.loads(source.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise YoloslimError(f"{source} is not valid JSON ({e}); fix or re-export it") from None
    if not isinstance(spec, dict) or any(not isinstance(spec.get(k), list) for k in ("images", "categories")):
        raise YoloslimError(f"{source} is not a COCO detection file: it needs images: and categories: lists")
    try:
        categories = sorted(spec["categories"], key=lambda c: c["id"])
        order = {c["id"]: i + 1 for i, c in enumerate(categories)}
        names = [str(c["name"]) for c in categories]
        for a in spec.setdefault("annotations", []):
            a["category_id"] = order[a["category_id"]]
            if len(a["bbox"]) != 4 or not all(isinstance(v, (int, float)) for v in a["bbox"]):
                raise TypeError("a 4-number bbox")
        for img in spec["images"]:
            if not img.get("width") or not img.get("height"):  # convert_coco needs them; some exports omit them
                img["width"], img["height"] = image_size(find_image(root, str(img["file_name"]), "", source))
        known = {img["id"] for img in spec["images"]}
        orphans = [a["image_id"] for a in spec["annotations"] if a["image_id"] not in known]
    except (KeyError, TypeError) as e:
        raise YoloslimError(
            f"{source}: an image, annotation or category lacks {e} (or names an unknown one); fix or re-export it"
        ) from None
    if orphans:
        raise YoloslimError(f"{source}: {len(orphans)} annotations name an image id not in images:, e.g. {orphans[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "annotations.json").write_text(json.dumps(spec))
        quiet = ULTRALYTICS_LOGGER.disabled
        ULTRALYTICS_LOGGER.disabled = True  # it would report its temporary folder as the result
        try:
            convert_coco(tmp, save_dir=Path(tmp) / "yolo", cls91to80=False)
        finally:
            ULTRALYTICS_LOGGER.disabled = quiet
        labels = Path(tmp) / "yolo" / "labels" / "annotations"
        items = []
        for img in spec["images"]:
            name = str(img.get("file_name", ""))
            image = find_image(root, name, Path(name).stem, source)
            label = (labels / name).with_suffix(".txt")
            rows = []
            for line in label.read_text().splitlines() if label.is_file() else []:
                c, cx, cy, w, h = (float(v) for v in line.split()[:5])
                rows += clipped(int(c), cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, 1.0, 1.0)
            items.append(Item(image, rows, image.relative_to(root)))
    if not items:
        raise YoloslimError(f"{source} lists no images; nothing to convert")
    return names, items


def find_image(root: Path, name: str, stem: str, annotation: Path) -> Path:
    """The image an annotation names, or the one that shares its stem (tools often leave <filename> stale)."""
    if name and (root / name).is_file():
        return root / name
    found = [p for p in sorted(root.glob(f"{stem}.*")) if is_image(p)]
    if not found:
        raise YoloslimError(
            f"{annotation}: image {name or stem} not found in {root}; pass images= the folder that holds it"
        )
    return found[0]


def image_size(path: Path) -> tuple[int, int]:
    try:
        with large_images(), Image.open(path) as im:
            return im.size
    except Exception as e:  # PIL raises many kinds for a bad file
        raise YoloslimError(f"{path} cannot be read as an image ({e}); replace it") from None


def clipped(cls: int, x1, y1, x2, y2, width, height) -> list[tuple]:
    """[YOLO row] of the box clipped to the image, or [] when nothing of it is left inside."""
    x1, x2 = max(0.0, min(x1, x2)), min(float(width), max(x1, x2))
    y1, y2 = max(0.0, min(y1, y2)), min(float(height), max(y1, y2))
    if x2 <= x1 or y2 <= y1:
        return []
    return [(cls, (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height)]


def split_items(items: list[Item], val, seed: int) -> dict[str, list[Item]]:
    names = as_list(val) if isinstance(val, (str, list, tuple)) else []
    share = None
    with contextlib.suppress(ValueError):
        share = float(val) if not isinstance(val, (list, tuple)) else None
    if share is not None:
        if not 0 < share < 1:
            raise YoloslimError(f"val={val} must be a share of the images in (0, 1) or the names of the val images")
        order = list(items)
        random.Random(seed).shuffle(order)
        count = min(len(items) - 1, max(1, round(share * len(items))))
        if count < 1:
            raise YoloslimError(f"{len(items)} image is too few to split into train and val; add images")
        held = {id(i) for i in order[:count]}
    else:
        wanted = set(names)
        held = {id(i) for i in items if {i.image.name, i.image.stem, str(i.relative)} & wanted}
        matched = {n for i in items for n in (i.image.name, i.image.stem, str(i.relative))} & wanted
        if wanted - matched:
            raise YoloslimError(f"val= names images not in the annotations: {', '.join(sorted(wanted - matched))}")
        if len(held) == len(items):
            raise YoloslimError("val= names every image; leave some for training")
    return {"train": [i for i in items if id(i) not in held], "val": [i for i in items if id(i) in held]}


def write_rows(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{int(r[0])} " + " ".join(f"{v:.6f}" for v in r[1:]) + "\n" for r in rows))


def write_yaml(folder: Path, out: Path, names, header: str) -> None:
    spec = {"path": str(out), "train": "images/train", "val": "images/val", "names": dict(enumerate(names))}
    (folder / "data.yaml").write_text(header + yaml.safe_dump(spec, sort_keys=False))


@verb("data tile")
def tile(
    data: str | Path | None = None,
    out: str | Path | None = None,
    size: int = 640,
    overlap: float = 0.2,
    min_visible: float = 0.5,
    scale: float = 1.0,
    overwrite: bool = False,
) -> Path:
    """Cut a YOLO dataset's images into overlapping size x size tiles (train and val stay apart); returns
    the new data.yaml.

    scale: resize each image by this factor first (e.g. 0.5 when the objects are larger than the model needs
    and training time matters more).
    A box cut by a tile's edge is clipped to it and kept when at least min_visible of its area is inside
    (and it is at least 2 px wide and high); smaller remnants are dropped. Images no larger than size are
    copied whole. Only training tiles overlap: validation tiles overlap no more than covering the image needs,
    so each object is scored about once. Train on the tiles at imgsz=size, so small objects keep their pixels."""
    with large_images():  # the images to tile may be far larger than a training image
        yaml_path, names, splits = read_dataset(data)
    root = yaml_path.parent
    out = Path(out).expanduser().absolute() if out else root.parent / f"{root.name}-tiles{size}"
    stride = max(1, round(size * (1 - overlap)))
    counts = {"images": 0, "tiles": 0, "boxes": 0, "dropped": 0}
    inputs = [yaml_path, *(image for _, items in splits.values() for image, _ in items)]
    with new_folder(out, overwrite, inputs=inputs) as partial:
        for split, (_, items) in splits.items():
            seen: set[str] = set()
            for image, rows in items:
                counts["images"] += 1
                step = stride if split == "train" else size
                for name, picture, kept, dropped in tiles_of(image, rows, size, step, min_visible, scale):
                    if name in seen:
                        raise YoloslimError(f"two images of {split} make tile {name}; give the images unique stems")
                    seen.add(name)
                    target = partial / "images" / split / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    picture.save(target, **({"quality": 95} if target.suffix in (".jpg", ".jpeg") else {}))
                    write_rows((partial / "labels" / split / name).with_suffix(".txt"), kept)
                    counts["tiles"] += 1
                    counts["boxes"] += len(kept)
                    counts["dropped"] += dropped
        header = f"# yoloslim data tile data={yaml_path} size={size} overlap={overlap} min_visible={min_visible}"
        header += f" scale={scale}\n"
        write_yaml(partial, out, list(names.values()), header)
    LOGGER.info(
        f"tile: {counts['images']} images -> {counts['tiles']} tiles of {size} px, {counts['boxes']} boxes "
        f"({counts['dropped']} remnants under {min_visible:g} of their box dropped) -> {out / 'data.yaml'}"
    )
    return out / "data.yaml"


def starts(length: int, size: int, stride: int) -> list[int]:
    """Tile origins along one side: evenly spread, the last one flush with the far edge."""
    if length <= size:
        return [0]
    return [round(x) for x in np.linspace(0, length - size, math.ceil((length - size) / stride) + 1)]


def tiles_of(image: Path, rows, size: int, stride: int, min_visible: float, scale: float):
    """(tile file name, PIL tile, its YOLO rows, remnants dropped) for each tile of one image."""
    with large_images(), Image.open(image) as im:
        picture = im.convert("RGB")
    if scale != 1:
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))))
    width, height = picture.size
    boxes = []
    for fields in rows:
        values = [float(v) for v in fields]
        xs, ys = (values[1::2], values[2::2]) if len(values) > 5 else (None, None)
        if xs is None:  # class cx cy w h
            _, cx, cy, w, h = values
            xs, ys = [cx - w / 2, cx + w / 2], [cy - h / 2, cy + h / 2]
        boxes.append((int(values[0]), min(xs) * width, min(ys) * height, max(xs) * width, max(ys) * height))
    suffix = image.suffix.lower() if image.suffix.lower() in SAVE_SUFFIXES else ".png"
    for y in starts(height, size, stride):
        for x in starts(width, size, stride):
            w, h = min(size, width - x), min(size, height - y)
            kept, dropped = [], 0
            for cls, x1, y1, x2, y2 in boxes:
                cx1, cy1, cx2, cy2 = max(x1, x), max(y1, y), min(x2, x + w), min(y2, y + h)
                if cx2 <= cx1 or cy2 <= cy1:
                    continue  # outside this tile
                inside = (cx2 - cx1) * (cy2 - cy1) / max((x2 - x1) * (y2 - y1), 1e-9)
                if inside < min_visible or min(cx2 - cx1, cy2 - cy1) < MIN_BOX_PX:
                    dropped += 1
                    continue
                kept += clipped(cls, cx1 - x, cy1 - y, cx2 - x, cy2 - y, w, h)
            name = f"{image.stem}_{x}_{y}{suffix}" if (w, h) != (width, height) else f"{image.stem}{suffix}"
            yield name, picture.crop((x, y, x + w, y + h)), kept, dropped
