"""Datasets from other tools: `data convert` (Pascal VOC xml or COCO json -> a YOLO dataset) and `data tile`
(large images -> overlapping tiles a detector sees at its input size).

Both write a new dataset folder (images/, labels/, data.yaml) in one rename at the end, never touch their input
and write nowhere else, whatever a file name in the annotations says. The image file is trusted over the
annotation: boxes are normalised by the image's own upright size (as Ultralytics reads it) and clipped to it;
boxes that cannot be used are dropped and counted, never guessed. VOC pixels count from 1 (as in Ultralytics'
VOC conversion); COCO crowd boxes are skipped and boxes without area dropped, as Ultralytics' convert_coco does.
"""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import random
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import cv2
import numpy as np
import yaml
from PIL import Image, ImageOps
from ultralytics.data.utils import exif_size

from .args import VERB_RULES, as_list, optional, verb
from .data import dataset_folder, image_problem, is_image, read_dataset, unreadable
from .errors import YoloslimError
from .log import LOGGER
from .quiet import SILENT, quiet_ultralytics

MIN_BOX_PX = 2  # a clipped box narrower than this teaches nothing
MIN_IMAGE_PX = 10  # Ultralytics drops images with a side under 10 px
MAX_SCALED_PIXELS = 2 * 89_478_485  # PIL refuses larger images as decompression bombs; scale= may not make them
MAX_COVER = 16  # training tiles may hold each pixel this often on average (overlap 0.75); more only repeats it
SAVE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}  # PIL writes these; others go to .png
DROPPED = {  # why a box was dropped, as the convert warning says it
    "finite": "with nan or inf coordinates",
    "area": "without area (width or height <= 0)",
    "outside": "wholly outside their image",
    "repeated": "repeated (the same box twice on one image)",
    "crowd": "marked iscrowd (crowd regions, which Ultralytics skips too)",
}


def class_names(key, value):
    if isinstance(value, (list, tuple)) and not all(
        isinstance(v, (str, int)) and not isinstance(v, bool) for v in value
    ):
        raise YoloslimError(f"{key}={value!r} must be class names (text), e.g. {key}=cat,dog")
    items = as_list(value)
    if not items:
        raise YoloslimError(f"{key}= is empty; give the class names in their order, e.g. {key}=cat,dog")
    return items


# data convert's own argument, kept with the verb it belongs to
VERB_RULES["data convert"].setdefault("names", optional(class_names))


@dataclass
class Item:
    """One image: its annotated boxes (class name, x1, y1, x2, y2 in its pixels), where they came from, and, once
    known, its path inside a split and its YOLO rows."""

    image: Path
    boxes: list[tuple] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    relative: PurePath | None = None
    rows: list[tuple] = field(default_factory=list)


@contextlib.contextmanager
def large_images():
    """Let PIL open aerial and satellite scenes (its decompression-bomb limit is ~180 MP), for this block only."""
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def warn(verb_name: str, text: str) -> None:
    LOGGER.warning(f"{verb_name}: warning: {text}")


def n_of(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def some(items, n: int = 3) -> str:
    items = [str(i) for i in items]
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


@verb("data convert")
def convert(
    source: str | Path | None = None,
    images: str | Path | None = None,
    out: str | Path = "datasets/converted",
    val: float | str = 0.2,
    seed: int = 0,
    names: list[str] | str | None = None,
    overwrite: bool = False,
) -> Path:
    """Pascal VOC xml or COCO json -> a YOLO dataset at out (images/, labels/, data.yaml); returns data.yaml.

    source: a folder of VOC .xml files (or one .xml), or a COCO .json. images: the folder the annotations'
    file names are relative to (default: the source's folder); an image outside it goes to the top of its split.
    val: the share of images held out for validation (split by image, shuffled by seed), or the names of the
    validation images (a,b: file names or stems). names: the classes in the order of their ids (cat,dog);
    unset: COCO categories in the order of their ids, VOC classes alphabetically. Names that differ only in
    case are one class. An image annotated twice gets the boxes of both; images that would share a label file
    (a.jpg, a.png) are renamed a.jpg, a_2.png. Boxes are clipped to their image. Images are copied, not linked."""
    if not source:
        raise YoloslimError("pass source=, a folder of Pascal VOC .xml files or a COCO .json file")
    source = Path(source).expanduser()
    if not source.exists():
        raise YoloslimError(f"source={source} not found; give a folder of VOC .xml files or a COCO .json file")
    root = Path(images).expanduser() if images else (source if source.is_dir() else source.parent)
    if not root.is_dir():
        raise YoloslimError(f"images={root} is not a folder; give the folder the annotations' images are in")
    root = Path(os.path.abspath(root))
    dropped: Counter = Counter()
    examples: dict[str, str] = {}
    stale: list[str] = []
    if source.suffix.lower() == ".json" and source.is_file():
        order, entries = read_coco(source, root, dropped, examples, stale)
    elif source.suffix.lower() == ".xml" or source.is_dir():
        order, entries = read_voc(source, root, dropped, examples, stale)
    else:
        raise YoloslimError(f"source={source} is neither a .json (COCO) nor .xml files (Pascal VOC)")
    if stale:
        warn(
            "data convert",
            f"used the image of the same stem for {n_of(len(stale), 'annotation')} whose file is not there: "
            f"{some(stale)}",
        )
    items = merge(entries)
    used = [b[0] for i in items for b in i.boxes]
    ids, classes = number_classes(order, used, names, source.suffix.lower() == ".json")
    with large_images():
        bad = [f"{item.image.name} ({problem})" for item in items if (problem := image_problem(item.image))]
    if bad:
        raise YoloslimError(
            f"{n_of(len(bad), 'image')} cannot be read: {some(bad)}; replace them or remove them from the annotations"
        )
    clipped_count = 0
    for item in items:
        width, height = image_size(item.image)
        for name, x1, y1, x2, y2 in item.boxes:
            if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
                dropped["outside"] += 1
                examples.setdefault("outside", f"{item.origins[0]}: {x1:g},{y1:g},{x2:g},{y2:g} on {width}x{height}")
                continue
            row = clipped(ids[name], x1, y1, x2, y2, width, height)
            clipped_count += x1 < 0 or y1 < 0 or x2 > width or y2 > height
            if not row:
                continue
            if row[0] in item.rows:
                dropped["repeated"] += 1
                examples.setdefault("repeated", item.origins[0])
            else:
                item.rows += row
    place(items, root)
    if dropped:
        why = "; ".join(f"{n} {DROPPED[k]} (e.g. {examples[k]})" for k, n in dropped.items())
        warn("data convert", f"{n_of(sum(dropped.values()), 'box', 'boxes')} dropped: {why}")
    splits = split_items(items, val, seed)
    out = Path(out).expanduser().absolute()
    with dataset_folder(out, overwrite, inputs=[source, root]) as partial:
        for split, part in splits.items():
            for item in part:
                image = partial / "images" / split / item.relative
                image.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(item.image, image)
                write_rows(partial / "labels" / split / item.relative.with_suffix(".txt"), item.rows)
        header = f"# yoloslim data convert source={source} val={val} seed={seed}"
        write_yaml(partial, out, classes, header + (f" names={','.join(names)}\n" if names else "\n"))
    boxes = sum(len(i.rows) for i in items)
    LOGGER.info(
        f"convert: {len(items)} images ({len(splits['train'])} train, {len(splits['val'])} val), {boxes} boxes "
        f"({clipped_count} clipped to their image), {len(classes)} classes ({', '.join(classes)}) "
        f"-> {out / 'data.yaml'}"
    )
    return out / "data.yaml"


def read_voc(source: Path, root: Path, dropped: Counter, examples: dict, stale: list) -> tuple[list, list]:
    """(class names, alphabetically; [(image, boxes, origin)]) of a VOC folder or file."""
    files = sorted(source.glob("*.xml")) if source.is_dir() else [source]
    if not files:
        raise YoloslimError(f"source={source} holds no .xml files; give a folder of Pascal VOC annotations")
    entries, wrong = [], []
    for file in files:
        try:
            tree = ET.parse(file).getroot()
        except ET.ParseError as e:
            raise YoloslimError(f"{file} is not valid XML ({e}); fix or remove it") from None
        if tree.tag != "annotation":
            raise YoloslimError(f"{file} is not a Pascal VOC annotation (root <{tree.tag}>, not <annotation>)")
        image = find_image(root, (tree.findtext("filename") or "").strip(), file, stale, file.stem)
        boxes = []
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
            if usable(x1 - 1, y1 - 1, x2 - 1, y2 - 1, f"{file.name} object {number}", dropped, examples):
                boxes.append((name, x1 - 1, y1 - 1, x2 - 1, y2 - 1))
        entries.append((image, boxes, file.name))
        with contextlib.suppress(TypeError, ValueError):  # <size> is optional; when given it must be the file's
            declared = tuple(float(tree.findtext(f"size/{k}")) for k in ("width", "height"))
            if min(declared) > 0 and declared != tuple(map(float, image_size(image))):
                wrong.append(
                    f"{file.name}: {declared[0]:g}x{declared[1]:g} in <size>, {image_size(image)[0]}x"
                    f"{image_size(image)[1]} on disk"
                )
    if wrong:
        raise YoloslimError(
            f"{source}: the annotation gives another size than the image file for {n_of(len(wrong), 'image')} "
            f"({some(wrong, 2)}), so the boxes cannot be placed; were the images resized after labelling? fix "
            "<size>, or delete it to have the boxes read in the files' pixels"
        )
    found = {b[0] for _, boxes, _ in entries for b in boxes}
    if not found:
        raise YoloslimError(f"no <object> with a usable box in the .xml files of {source}; nothing to convert")
    return sorted(found, key=lambda n: (n.casefold(), n)), entries


def usable(x1, y1, x2, y2, where: str, dropped: Counter, examples: dict) -> bool:
    """Whether a box (pixels) can be a label; the reason it cannot is counted."""
    reason = None if all(map(math.isfinite, (x1, y1, x2, y2))) else "finite"
    reason = reason or (None if x2 > x1 and y2 > y1 else "area")
    if reason:
        dropped[reason] += 1
        examples.setdefault(reason, where)
    return reason is None


def is_id(value) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def read_coco(source: Path, root: Path, dropped: Counter, examples: dict, stale: list) -> tuple[list, list]:
    """(class names in the order of their category ids; [(image, boxes, origin)]) of a COCO detection json."""
    try:
        spec = json.loads(source.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise YoloslimError(f"{source} is not valid JSON ({e}); fix or re-export it") from None
    if not isinstance(spec, dict) or any(not isinstance(spec.get(k), list) for k in ("images", "categories")):
        raise YoloslimError(f"{source} is not a COCO detection file: it needs images: and categories: lists")
    annotations = spec.get("annotations") or []
    if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in [*annotations, *spec["images"]]):
        raise YoloslimError(f"{source}: images: and annotations: must be lists of {{...}} entries; fix or re-export it")

    def fail(what: str):
        raise YoloslimError(f"{source}: {what}" + ("" if ";" in what else "; fix or re-export it"))

    def need(entry, kind: str, *keys):
        for key in keys:
            if not isinstance(entry, dict) or entry.get(key) is None:
                fail(f"an image, annotation or category lacks {key!r} ({kind} {entry!r:.80})")

    categories = {}
    for c in spec["categories"]:
        need(c, "category", "id", "name")
        if not is_id(c.get("id")):
            fail(f"category {c!r} needs an id: a whole number or a string")
        name = str(c.get("name") if c.get("name") is not None else "").strip()
        if not name:
            fail(f"category {c['id']!r} has no name")
        if c["id"] in categories:
            fail(f"categories {categories[c['id']]!r} and {name!r} share the id {c['id']!r}; give each its own id")
        categories[c["id"]] = name
    if not categories:
        fail("categories: is empty; name the classes there")
    images = {}
    for img in spec["images"]:
        need(img, "image", "id", "file_name")
        if not is_id(img.get("id")) or not isinstance(img.get("file_name"), str) or not img["file_name"].strip():
            fail(f"image {img!r} needs an id (a whole number or a string) and a file_name")
        if img["id"] in images:
            fail(f"two images share the id {img['id']!r}, so their annotations are ambiguous; give each its own id")
        images[img["id"]] = img
    if not images:
        raise YoloslimError(f"{source} lists no images; nothing to convert")
    boxes = {key: [] for key in images}
    for a in annotations:
        need(a, "annotation", "image_id", "category_id", "bbox")
        if a.get("image_id") not in images:
            fail(f"annotation {a.get('id')!r} names image {a.get('image_id')!r}, which images: lacks")
        if a.get("category_id") not in categories:
            fail(f"annotation {a.get('id')!r} names category {a.get('category_id')!r}, which categories: lacks")
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(is_number(v) for v in bbox):
            fail(f"annotation {a.get('id')!r} lacks a bbox of 4 numbers [x, y, width, height] (got {bbox!r})")
        if a.get("iscrowd"):  # a crowd region, not one object
            dropped["crowd"] += 1
            examples.setdefault("crowd", f"annotation {a.get('id')!r}")
            continue
        x, y, w, h = (float(v) for v in bbox)
        if usable(x, y, x + w, y + h, f"annotation {a.get('id')!r}", dropped, examples):
            boxes[a["image_id"]].append((categories[a["category_id"]], x, y, x + w, y + h))
    entries, wrong = [], []
    for key, img in images.items():
        image = find_image(root, img["file_name"].strip(), source, stale)
        declared, real = (img.get("width"), img.get("height")), image_size(image)
        # 0 or no size: unknown (some exports leave it out); any other size must be the file's
        if all(is_number(v) and v > 0 for v in declared) and tuple(map(float, declared)) != tuple(map(float, real)):
            wrong.append(
                f"{img['file_name']}: {declared[0]:g}x{declared[1]:g} in the json, {real[0]}x{real[1]} on disk"
            )
        entries.append((image, boxes[key], f"image {key!r}"))
    if wrong:
        raise YoloslimError(
            f"{source}: the json gives another size than the file for {n_of(len(wrong), 'image')} "
            f"({some(wrong, 2)}), so the boxes cannot be placed; were the images resized after labelling? fix "
            "width/height, or delete them from the json to have the boxes read in the files' pixels"
        )
    order = sorted(categories, key=lambda i: (isinstance(i, str), i))
    return [categories[i] for i in order], entries


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def find_image(root: Path, name: str, annotation: Path, stale: list, stem: str | None = None) -> Path:
    """The image an annotation names (a path relative to root, or absolute; Windows separators too), or else the
    one image in that folder with its stem (VOC: the xml's stem), as tools often leave a file name stale; those
    are listed in `stale` for one warning."""
    named = Path(os.path.normpath(root / name)) if name else None
    if named and not named.is_file() and "\\" in name:
        named = Path(os.path.normpath(root / name.replace("\\", "/")))
    if named and named.is_file():
        return named
    folder, stem = (root, stem) if stem else (named.parent, named.stem)
    found = [p for p in sorted(folder.glob(f"{glob.escape(stem)}.*")) if is_image(p) and p.is_file()]
    if not found:
        raise YoloslimError(
            f"{annotation}: image {name or stem} not found in {folder}; pass images= the folder that holds it"
        )
    if len(found) > 1:
        raise YoloslimError(
            f"{annotation}: image {name or stem} not found in {folder}, and {len(found)} images there share the "
            f"stem {stem} ({some(p.name for p in found)}); fix the file name in the annotation"
        )
    if name:
        stale.append(f"{annotation.name}: {name} -> {found[0].name}")
    return found[0]


def merge(entries: list[tuple]) -> list[Item]:
    """One Item per image file: an image annotated twice (two xml, two COCO entries) gets the boxes of both, said
    once, so it is never split between train and val nor loses a box set."""
    items: dict[str, Item] = {}
    for image, boxes, origin in entries:
        item = items.setdefault(os.path.realpath(image), Item(image))
        item.boxes += boxes
        item.origins.append(origin)
    twice = [f"{i.image.name} ({' and '.join(i.origins)})" for i in items.values() if len(i.origins) > 1]
    if twice:
        warn("data convert", f"{n_of(len(twice), 'image')} annotated more than once, the boxes merged: {some(twice)}")
    return list(items.values())


def number_classes(order: list[str], used: list[str], given, coco: bool) -> tuple[dict[str, int], list[str]]:
    """({class name as annotated: id}, names): names= when given, else `order`; names that differ only in case
    (or COCO categories of one name) are one class, said in one line."""
    spellings: dict[str, list[str]] = {}
    for name in order + [u for u in used if u not in order]:
        spellings.setdefault(name.casefold(), []).append(name)
    if given:
        folded = [g.casefold() for g in given]
        twice = sorted({g for g in given if folded.count(g.casefold()) > 1})
        if twice:
            raise YoloslimError(f"names= lists {some(twice)} twice (names are compared ignoring case); give each once")
        unknown = sorted({u for u in used if u.casefold() not in folded})
        if unknown:
            raise YoloslimError(
                f"names= lacks the classes {some(unknown)}, which boxes are labelled with; add them to names="
            )
        names = list(given)
        idle = [g for g in given if g.casefold() not in {u.casefold() for u in used}]
    else:  # each class by its most used spelling
        uses = Counter(used)
        names = [max(group, key=lambda n: (uses[n], -group.index(n))) for group in spellings.values()]
        idle = [n for n in names if n.casefold() not in {u.casefold() for u in used}]
        if not coco and len(names) > 1:
            warn(
                "data convert",
                f"the VOC classes are numbered alphabetically ({', '.join(f'{i} {n}' for i, n in enumerate(names))}); "
                f"pass names=... to set their order",
            )
    folded = [m.casefold() for m in names]
    ids = {n: folded.index(key) for key, group in spellings.items() if key in folded for n in group}
    alike = [group for key, group in spellings.items() if len(group) > 1 and key in folded]
    if alike:
        shown = "; ".join(f"{', '.join(map(repr, g))} -> {names[ids[g[0]]]!r}" for g in alike)
        warn("data convert", f"classes named alike (ignoring case) are one class: {shown}")
    if idle:
        warn("data convert", f"{n_of(len(idle), 'class', 'classes')} without any box: {some(idle)} (kept in names:)")
    return ids, names


def place(items: list[Item], root: Path) -> None:
    """Each image's path inside its split: its path under images=, or its file name alone for an image outside it;
    images that would share a label file (a.jpg, a.png; same folder and stem) are renamed a_2.png, said once."""
    outside = []
    for item in items:
        try:
            item.relative = PurePath(item.image.relative_to(root))
        except ValueError:
            item.relative = PurePath(item.image.name)
            outside.append(str(item.image))
    if outside:
        warn(
            "data convert",
            f"{n_of(len(outside), 'image')} outside images={root} put at the top of their split: {some(outside)}",
        )
    renamed = unique_places(items)
    if renamed:
        warn(
            "data convert",
            f"{n_of(len(renamed), 'image')} renamed so that each has a label file of its own: {some(renamed)}",
        )


def unique_places(things, attribute: str = "relative") -> list[str]:
    """Give each thing's path (its `attribute`) a label file of its own: Ultralytics names a label by folder and
    stem, so a.jpg and a.png would share a.txt. The first keeps its name, the others get a_2, a_3 ...; returns
    'old -> new' for each renamed one."""
    key = lambda p: (p.parent, p.stem)  # noqa: E731
    taken = Counter(key(getattr(t, attribute)) for t in things)
    seen, renamed = set(), []
    for thing in things:
        path = getattr(thing, attribute)
        if key(path) in seen:
            n, new = 2, path
            while key(new) in taken:
                new, n = path.with_name(f"{path.stem}_{n}{path.suffix}"), n + 1
            taken[key(new)] += 1
            setattr(thing, attribute, new)
            renamed.append(f"{path} -> {new.name}")
        seen.add(key(getattr(thing, attribute)))
    return renamed


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) as Ultralytics sees the image: upright by its EXIF orientation."""
    try:
        with large_images(), quiet_ultralytics(SILENT), Image.open(path) as im:
            return exif_size(im)
    except Exception as e:  # PIL raises many kinds for a bad file
        raise YoloslimError(f"{path} cannot be read as an image ({unreadable(e)}); replace it") from None


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
        keys = lambda i: {i.image.name, i.image.stem, str(i.relative), i.relative.name, i.relative.stem}  # noqa: E731
        held = {id(i) for i in items if keys(i) & wanted}
        matched = {n for i in items for n in keys(i)} & wanted
        if wanted - matched:
            raise YoloslimError(f"val= names images not in the annotations: {', '.join(sorted(wanted - matched))}")
        if len(held) == len(items):
            raise YoloslimError("val= names every image; leave some for training")
    return {"train": [i for i in items if id(i) not in held], "val": [i for i in items if id(i) in held]}


def write_rows(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{int(r[0])} " + " ".join(f"{v:.6f}" for v in r[1:]) + "\n" for r in rows))


def write_yaml(folder: Path, out: Path, names, header: str, extra: dict | None = None) -> None:
    spec = {"path": str(out), "train": "images/train", "val": "images/val", "names": dict(enumerate(names))}
    text = yaml.safe_dump({**spec, **(extra or {})}, sort_keys=False, allow_unicode=True)
    (folder / "data.yaml").write_text(header + text, encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# tile


@dataclass
class Scene:
    """One image to tile: its label rows, its path inside the split, its size after scale= and its tiles."""

    image: Path
    rows: list
    relative: PurePath
    size: tuple[int, int] = (0, 0)
    tiles: list = field(default_factory=list)  # [(x, y, w, h, path inside the split)]


@verb("data tile")
def tile(
    data: str | Path | None = None,
    out: str | Path | None = None,
    size: int = 640,
    overlap: float = 0.2,
    min_visible: float = 0.5,
    scale: float = 1.0,
    task: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Cut a YOLO dataset's images into overlapping size x size tiles (train and val stay apart); returns
    the new data.yaml.

    scale: resize each image by this factor first (e.g. 0.5 when the objects are larger than the model needs
    and training time matters more).
    A label cut by a tile's edge is clipped to it and kept when at least min_visible of its area is inside
    (and it is at least 2 px wide and high); smaller remnants are dropped. Each task keeps its labels: boxes
    are clipped, polygons (segment) clipped to the tile, rotated boxes (obb) replaced by the smallest rotated
    box of their visible part, keypoints (pose) outside the tile marked hidden. task: how to read rows of four
    corners (obb or segment; unset: obb when every non-box row has four corners), or detect to make every
    label a box. Images no larger than size are copied whole. Only training tiles overlap: validation tiles
    overlap no more than covering the image needs, so each object is scored about once. Train on the tiles at
    imgsz=size, so small objects keep their pixels."""
    with large_images():  # the images to tile may be far larger than a training image
        yaml_path, names, splits, spec = read_dataset(data, task)
    root = yaml_path.parent
    out = Path(out).expanduser().absolute() if out else root.parent / f"{root.name}-tiles{size}"
    kpt = tuple(spec["kpt_shape"]) if task in (None, "pose") and spec.get("kpt_shape") else None
    rows = [r for _, items in splits.values() for _, rs in items for r in rs]
    corners = [r for r in rows if len(r) != 5 and not (kpt and len(r) == 5 + kpt[0] * kpt[1])]
    obb = task == "obb" or (task is None and bool(corners) and all(len(r) == 9 for r in corners))
    plan = plan_tiles(splits, size, overlap, scale)
    counts = {"images": 0, "tiles": 0, "labels": 0, "dropped": 0}
    inputs = [yaml_path, *(scene.image for scenes in plan.values() for scene in scenes)]
    with dataset_folder(out, overwrite, inputs=inputs) as partial:
        for split, scenes in plan.items():
            for scene in scenes:
                counts["images"] += 1
                for relative, picture, kept, dropped in tiles_of(scene, min_visible, kpt, obb, task == "detect"):
                    target = partial / "images" / split / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    picture.save(target, **({"quality": 95} if target.suffix in (".jpg", ".jpeg") else {}))
                    write_rows((partial / "labels" / split / relative).with_suffix(".txt"), kept)
                    counts["tiles"] += 1
                    counts["labels"] += len(kept)
                    counts["dropped"] += dropped
        header = f"# yoloslim data tile data={yaml_path} size={size} overlap={overlap} min_visible={min_visible}"
        header += f" scale={scale}{f' task={task}' if task else ''}\n"
        keep = {k: spec[k] for k in ("kpt_shape", "flip_idx") if k in spec and kpt}
        write_yaml(partial, out, list(names.values()), header, keep)
    kinds = Counter(kind_of(len(r), kpt, obb, task == "detect") for r in rows)
    LOGGER.info(
        f"tile: {counts['images']} images -> {counts['tiles']} tiles of {size} px, {counts['labels']} labels "
        f"({some(f'{k} {n}' for n, k in kinds.items())} in the source; {counts['dropped']} remnants under "
        f"{min_visible:g} of their area dropped) -> {out / 'data.yaml'}"
    )
    return out / "data.yaml"


def plan_tiles(splits: dict, size: int, overlap: float, scale: float) -> dict[str, list[Scene]]:
    """Every tile of every image, from the images' headers, before anything is written. Refused first, from the
    sizes alone: a scale= that makes images Ultralytics cannot use (or PIL cannot hold), and an overlap= whose
    training tiles would repeat each pixel more than MAX_COVER times."""
    stride = max(1, round(size * (1 - overlap)))
    plan, small, large = {}, [], []
    for split, (_, items) in splits.items():
        unique = {os.path.realpath(image): (image, rows) for image, rows in items}
        if len(unique) < len(items):
            warn("data tile", f"{split}: {n_of(len(items) - len(unique), 'image')} listed more than once, tiled once")
        # each image keeps its folders under the split's common folder: cam1/0001.jpg and cam2/0001.jpg stay apart
        common = os.path.commonpath([os.path.dirname(os.path.abspath(image)) for image, _ in unique.values()])
        scenes = [Scene(i, r, PurePath(os.path.relpath(os.path.abspath(i), common))) for i, r in unique.values()]
        renamed = unique_places(scenes)
        if renamed:
            warn(
                "data tile",
                f"{split}: {n_of(len(renamed), 'image')} renamed so that each tile has a label file of its own: "
                f"{some(renamed)}",
            )
        for scene in scenes:
            width, height = image_size(scene.image)
            scene.size = (max(1, round(width * scale)), max(1, round(height * scale)))
            if min(scene.size) < MIN_IMAGE_PX:
                small.append((scene.image.name, width, height, *scene.size))
            if scene.size[0] * scene.size[1] > max(MAX_SCALED_PIXELS, width * height):
                large.append((scene.image.name, width, height, *scene.size))
        plan[split] = scenes
    if small:
        name, w, h, sw, sh = small[0]
        need = max(MIN_IMAGE_PX / min(s[1:3]) for s in small)
        raise YoloslimError(
            f"scale={scale:g} makes {n_of(len(small), 'image')} smaller than {MIN_IMAGE_PX} px a side (e.g. {name}: "
            f"{w}x{h} -> {sw}x{sh}), which Ultralytics cannot train on; give scale >= {math.ceil(need * 1000) / 1000:g}"
        )
    if large:
        name, w, h, sw, sh = large[0]
        raise YoloslimError(
            f"scale={scale:g} makes {n_of(len(large), 'image')} larger than {MAX_SCALED_PIXELS / 1e6:.0f} MP "
            f"(e.g. {name}: {w}x{h} -> {sw}x{sh}), more than memory should hold for one image; give a smaller scale="
        )
    train = plan["train"]
    counts = [count(s.size[0], size, stride) * count(s.size[1], size, stride) for s in train]
    covered = sum(n * min(size, s.size[0]) * min(size, s.size[1]) for n, s in zip(counts, train))
    cover = covered / sum(s.size[0] * s.size[1] for s in train)
    if cover > MAX_COVER:
        raise YoloslimError(
            f"overlap={overlap:g} would cut the {len(train)} train images into {sum(counts):,} tiles of {size} px, "
            f"each pixel in {cover:.0f} of them on average; lower overlap= (0.2 is usual, at most 0.75)"
        )
    for split, scenes in plan.items():
        step = stride if split == "train" else size
        for scene in scenes:
            suffix = scene.relative.suffix.lower() if scene.relative.suffix.lower() in SAVE_SUFFIXES else ".png"
            for y in starts(scene.size[1], size, step):
                for x in starts(scene.size[0], size, step):
                    w, h = min(size, scene.size[0] - x), min(size, scene.size[1] - y)
                    whole = (w, h) == scene.size
                    name = f"{scene.relative.stem}{suffix}" if whole else f"{scene.relative.stem}_{x}_{y}{suffix}"
                    scene.tiles.append(Tile(x, y, w, h, scene.relative.with_name(name)))
        unique_places([t for s in scenes for t in s.tiles], "path")  # a tile a_0_0 of a.jpg vs an image a_0_0.jpg
    return plan


def count(length: int, size: int, stride: int) -> int:
    """len(starts(length, size, stride)), without making them."""
    return 1 if length <= size else math.ceil((length - size) / stride) + 1


@dataclass
class Tile:
    x: int
    y: int
    w: int
    h: int
    path: PurePath


def starts(length: int, size: int, stride: int) -> list[int]:
    """Tile origins along one side: evenly spread, the last one flush with the far edge."""
    if length <= size:
        return [0]
    return [round(x) for x in np.linspace(0, length - size, math.ceil((length - size) / stride) + 1)]


def tiles_of(scene: Scene, min_visible: float, kpt, obb: bool, boxes_only: bool):
    """(tile path inside the split, PIL tile, its YOLO rows, remnants dropped) for each tile of one image."""
    with large_images(), Image.open(scene.image) as im:
        picture = ImageOps.exif_transpose(im).convert("RGB")  # upright, as Ultralytics reads it and its labels
    if picture.size != scene.size:
        picture = picture.resize(scene.size)
    width, height = scene.size
    labels = [label_of([float(v) for v in fields], width, height, kpt, obb, boxes_only) for fields in scene.rows]
    for t in scene.tiles:
        kept, dropped = [], 0
        for label in labels:
            row = label.cut(t.x, t.y, t.w, t.h, min_visible)
            if row == "dropped":
                dropped += 1
            elif row:
                kept.append(row)
        yield t.path, picture.crop((t.x, t.y, t.x + t.w, t.y + t.h)), kept, dropped


@dataclass
class Label:
    """One label in the scaled image's pixels: kind box, polygon, obb or pose; points are (x, y) corners or the
    polygon, keypoints (x, y, visible) or (x, y)."""

    kind: str
    cls: int
    points: list
    keypoints: list = field(default_factory=list)

    def cut(self, x: int, y: int, w: int, h: int, min_visible: float):
        """Its row in the tile at x, y (w x h), None when it is outside the tile, 'dropped' for a small remnant."""
        xs, ys = [p[0] for p in self.points], [p[1] for p in self.points]
        if max(xs) <= x or min(xs) >= x + w or max(ys) <= y or min(ys) >= y + h:
            return None
        local = [(px - x, py - y) for px, py in self.points]
        inside = clip_polygon(local, w, h) if self.kind in ("polygon", "obb") else None
        if inside is not None and len(inside) < 3:
            return None  # a concave polygon around the tile, not in it
        if inside is None:  # a box: the corners are x1, y1 and x2, y2
            (x1, y1), (x2, y2) = local
            inside = [(max(x1, 0), max(y1, 0)), (min(x2, w), min(y2, h))]
            share = box_area(inside) / max(box_area(local), 1e-9)
        else:
            share = polygon_area(inside) / max(polygon_area(local), 1e-9)
        seen_x, seen_y = [p[0] for p in inside], [p[1] for p in inside]
        if share < min_visible or min(max(seen_x) - min(seen_x), max(seen_y) - min(seen_y)) < MIN_BOX_PX:
            return "dropped"
        if self.kind == "polygon":
            return (self.cls, *(v for px, py in inside for v in (px / w, py / h)))
        if self.kind == "obb":
            corners = np.float64(local if share >= 1 - 1e-9 else fitted_box(inside, w, h)) / (w, h)
            return (self.cls, *corners.flatten().tolist())
        (x1, y1), (x2, y2) = inside
        row = (self.cls, (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h)
        if self.kind == "box":
            return row
        points = []
        for px, py, *visible in self.keypoints:
            px, py = px - x, py - y
            hidden = not (0 <= px < w and 0 <= py < h) or (visible and visible[0] == 0)
            if hidden and not visible:  # (x, y) keypoints cannot be marked hidden: the object goes
                return "dropped"
            points += [0.0, 0.0, 0.0] if hidden else [px / w, py / h, *visible]
        return (*row, *points)


def kind_of(length: int, kpt, obb: bool, boxes_only: bool) -> str:
    """What a label row of this many numbers is: box, pose, obb or polygon (boxes_only: box, as detect reads it)."""
    pose = bool(kpt) and length == 5 + kpt[0] * kpt[1]
    if boxes_only or length == 5:
        return "box"
    return "pose" if pose else "obb" if obb and length == 9 else "polygon"


def label_of(values: list[float], width: int, height: int, kpt, obb: bool, boxes_only: bool) -> Label:
    cls, coords, kind = int(values[0]), values[1:], kind_of(len(values), kpt, obb, boxes_only)
    if len(values) == 5 or (kpt and len(values) == 5 + kpt[0] * kpt[1]):
        cx, cy, bw, bh = coords[:4]
        box = [((cx - bw / 2) * width, (cy - bh / 2) * height), ((cx + bw / 2) * width, (cy + bh / 2) * height)]
        d = kpt[1] if kind == "pose" else 2
        keypoints = [
            (coords[i] * width, coords[i + 1] * height, *coords[i + 2 : i + d]) for i in range(4, len(coords), d)
        ]
        return Label(kind, cls, box, keypoints if kind == "pose" else [])
    points = [(coords[i] * width, coords[i + 1] * height) for i in range(0, len(coords), 2)]
    if kind == "box":  # a polygon or rotated box read as detection reads it: its bounding box
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        return Label("box", cls, [(min(xs), min(ys)), (max(xs), max(ys))])
    return Label(kind, cls, points)


def clip_polygon(points: list, w: float, h: float) -> list:
    """The part of a polygon inside the rectangle 0..w x 0..h (Sutherland-Hodgman; fine for concave ones too,
    which may gain edges along the border)."""
    for axis, bound, low in ((0, 0.0, True), (0, w, False), (1, 0.0, True), (1, h, False)):
        inside = (lambda p, a=axis, b=bound: p[a] >= b) if low else (lambda p, a=axis, b=bound: p[a] <= b)
        result = []
        for i, current in enumerate(points):
            previous = points[i - 1]
            if inside(current) != inside(previous):
                t = (bound - previous[axis]) / (current[axis] - previous[axis])
                cut = [previous[0] + t * (current[0] - previous[0]), previous[1] + t * (current[1] - previous[1])]
                cut[axis] = bound
                result.append(tuple(cut))
            if inside(current):
                result.append(current)
        points = result
        if not points:
            break
    return points


def fitted_box(points: list, w: float, h: float) -> np.ndarray:
    """The four corners of the smallest rectangle around points that lies inside 0..w x 0..h: the rotated box of
    a rotated box's visible part. Its sides follow one edge of the points' hull (as cv2.minAreaRect's do); the
    hull of a part cut by the tile has an edge along the tile's border, so one candidate always fits."""
    hull = cv2.convexHull(np.float32(points)).reshape(-1, 2).astype(np.float64)
    x1, y1, x2, y2 = *hull.min(0), *hull.max(0)
    best = (x2 - x1) * (y2 - y1), np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    for edge in np.roll(hull, -1, 0) - hull:
        if not edge.any():
            continue
        u = edge / np.hypot(*edge)
        v = np.array([-u[1], u[0]])
        a, b = hull @ u, hull @ v
        corners = np.array([[a.min(), b.min()], [a.max(), b.min()], [a.max(), b.max()], [a.min(), b.max()]]) @ [u, v]
        area = (a.max() - a.min()) * (b.max() - b.min())
        if area < best[0] - 1e-9 and (corners > -1e-6).all() and (corners < (w + 1e-6, h + 1e-6)).all():
            best = area, corners
    return np.clip(best[1], 0, (w, h))


def polygon_area(points: list) -> float:
    if len(points) < 3:
        return 0.0
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1]))) / 2


def box_area(corners: list) -> float:
    (x1, y1), (x2, y2) = corners
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)
