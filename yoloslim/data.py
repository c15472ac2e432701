"""Data: the synthetic tea-sprout dataset (`synth`) and a YOLO data.yaml validator (`check`).

`check` reads every image and label without changing them, so it runs before every training; it follows
Ultralytics' rules for what a dataset may hold (see image_problem and label_problem).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import math
import os
import re
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import yaml
from PIL import Image
from ultralytics import utils as ultralytics_utils

from .args import TASKS, verb
from .errors import YoloslimError
from .io import new_folder
from .log import LOGGER
from .quiet import SILENT, quiet_ultralytics

NAMES = {0: "bud", 1: "leaf"}
KPT_SHAPE = (3, 3)  # base, middle and tip of a blade; x, y, visible
JPEG_QUALITY = 90
# The suffixes Ultralytics accepts as images (ultralytics.data.utils.IMG_FORMATS).
IMAGE_SUFFIXES = {"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"}

# Difficulty knobs of the generator (fractions of the image side unless said otherwise).
EMPTY_IMAGE_RATE = 0.10  # images with no labelled object, only background and distractors
MAX_OBJECTS = 8  # labelled objects per non-empty image: 1..MAX_OBJECTS
MAX_DISTRACTORS = 6  # unlabelled twigs, stones, berries, dry leaves per image: 0..MAX_DISTRACTORS
BUD_LENGTH = (0.10, 0.26)
LEAF_LENGTH = (0.13, 0.38)
MIN_VISIBLE = 0.4  # drop a label when less than this share of the shape is visible
MIN_BOX_SIDE = 0.012  # drop a label whose visible box is narrower than this (at least 2 px)
BLUR_RATE = 0.25


# --------------------------------------------------------------------------------------------------
# synth


@verb("data synth")
def synth(
    out: str | Path = "datasets/tea-synth",
    train: int = 400,
    val: int = 100,
    imgsz: int = 224,
    seed: int = 0,
    overwrite: bool = False,
    task: str = "detect",
) -> Path:
    """Write the synthetic tea-sprout dataset to `out` and return the path of its data.yaml.

    task: which labels: detect (boxes), segment (the polygon of each shape's visible part), pose (its box and
    three keypoints: base, middle, tip of the blade; kpt_shape [3, 3]) or obb (the rotated box of its visible
    part). The images are the same for every task."""
    if task not in TASKS:
        raise YoloslimError(f"task={task!r} is not one of {', '.join(TASKS)}")
    start = time.time()
    out = Path(out).expanduser().absolute()
    with dataset_folder(out, overwrite) as partial:
        counts = {"objects": 0, "empty": 0, 0: 0, 1: 0}
        write_split(partial, "train", 0, train, imgsz, seed, counts, task)
        write_split(partial, "val", 1, val, imgsz, seed, counts, task)
        spec = {"path": str(out), "train": "images/train", "val": "images/val", "names": dict(NAMES)}
        if task == "pose":
            spec.update(kpt_shape=list(KPT_SHAPE), flip_idx=list(range(KPT_SHAPE[0])))  # base, middle, tip: no swap
        header = f"# Synthetic tea-sprout dataset: yoloslim data synth train={train} val={val} imgsz={imgsz} "
        header += f"seed={seed} task={task}\n"
        (partial / "data.yaml").write_text(header + yaml.safe_dump(spec, sort_keys=False))

    LOGGER.info(
        f"synth: wrote {train} train + {val} val images ({counts['objects']} objects: {counts[0]} bud, "
        f"{counts[1]} leaf; {counts['empty']} images without objects) to {out} in {time.time() - start:.1f}s"
    )
    return out / "data.yaml"


@contextlib.contextmanager
def dataset_folder(out, overwrite: bool = False, inputs=()):
    """io.new_folder, whose hidden partial folder is also locked while it is filled: a run killed outright
    (SIGKILL, power loss) leaves its partial folder behind, and the next run into the same out= removes those
    that are clearly left over (named by new_folder for out=, their process gone, their lock free)."""
    with new_folder(out, overwrite, inputs) as partial:
        lock = os.open(partial, os.O_RDONLY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            remove_left_over(partial)
            yield partial
        finally:
            os.close(lock)


def remove_left_over(partial: Path) -> None:
    """Remove the partial (and replaced) folders killed runs left beside `partial`."""
    name = re.fullmatch(r"\.(.+)\.partial-\d+", partial.name).group(1)
    out = partial.parent / name
    for other in partial.parent.glob(f".{glob.escape(name)}.*-*"):
        kind, _, pid = other.name.removeprefix(f".{name}.").partition("-")
        # a replaced dataset (.old-) only once its replacement is in place; a live process's folders never
        if other == partial or not pid.isdigit() or kind not in ("partial", "old") or alive(int(pid)):
            continue
        if kind == "old" and not out.is_dir():
            continue
        with contextlib.suppress(OSError):
            fd = os.open(other, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by a run on another machine: left alone
                shutil.rmtree(other)
            finally:
                os.close(fd)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def write_split(folder, split, split_id, count, imgsz, seed, counts, task="detect") -> None:
    """Draw `count` images with their label files into folder/images/split and folder/labels/split."""
    (folder / "images" / split).mkdir(parents=True)
    (folder / "labels" / split).mkdir(parents=True)
    for index in range(count):
        # One generator per image: an image does not change when the counts change.
        rng = np.random.default_rng([seed, split_id, index])
        image, labels = draw_image(rng, imgsz, task)
        stem = f"tea_{index:05d}"
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise YoloslimError(f"OpenCV could not encode {split}/{stem}.jpg; check the opencv-python install")
        (folder / "images" / split / f"{stem}.jpg").write_bytes(jpeg.tobytes())
        rows = "".join(" ".join([str(row[0]), *(f"{v:.6f}" for v in row[1:])]) + "\n" for row in labels)
        (folder / "labels" / split / f"{stem}.txt").write_text(rows)
        counts["objects"] += len(labels)
        counts["empty"] += not labels
        for row in labels:
            counts[row[0]] += 1


def hsv_colour(rng, hue, sat, val) -> tuple[int, int, int]:
    """A BGR colour drawn from HSV ranges (OpenCV hue scale 0..180)."""
    hsv = np.uint8([[[rng.uniform(*hue) % 180, rng.uniform(*sat), rng.uniform(*val)]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def shade(colour, factor) -> tuple[int, int, int]:
    return tuple(int(min(255, c * factor)) for c in colour)


def draw_background(rng, size) -> np.ndarray:
    """Soil and foliage mixed by a smooth random mask, with blotches, grain and grass-like strokes."""
    soil = np.float32(hsv_colour(rng, (5, 20), (60, 150), (40, 110)))
    foliage = np.float32(hsv_colour(rng, (40, 80), (80, 200), (30, 90)))
    cells = int(rng.integers(2, 6))
    mix = cv2.resize(rng.random((cells, cells), dtype=np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    mix = np.clip((mix - 0.5) * rng.uniform(1, 4) + 0.5, 0, 1)[..., None]
    image = soil * (1 - mix) + foliage * mix
    cells = int(rng.integers(6, 16))
    # Blotches vary mostly in brightness, a little in colour: real ground is not rainbow-coloured.
    blotches = rng.normal(0, rng.uniform(10, 30), (cells, cells, 1)) + rng.normal(0, 6, (cells, cells, 3))
    blotches = blotches.astype(np.float32)
    image += cv2.resize(blotches, (size, size), interpolation=cv2.INTER_CUBIC)
    image += rng.uniform(4, 14) * rng.standard_normal((size, size, 1), dtype=np.float32)
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(5, 30))):
        start = rng.uniform(0, size, 2)
        end = start + rng.normal(0, 0.12 * size, 2)
        colour = hsv_colour(rng, (10, 80), (40, 200), (20, 120))
        cv2.line(image, tuple(start.astype(int)), tuple(end.astype(int)), colour, int(rng.integers(1, 3)), cv2.LINE_AA)
    if rng.random() < 0.5:  # out-of-focus ground behind sharp sprouts
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.6, 2.0))
    return image


def blade(rng, length, width_ratio, base_exp, tip_exp):
    """Outline of a bud or leaf along the x axis, centred at 0: returns (outline, one half, midline).

    The half-width follows t^base_exp * (1-t)^tip_exp: a blunt base at t=0 and a pointed tip at t=1.
    """
    t = np.linspace(0, 1, 24)
    profile = t**base_exp * (1 - t) ** tip_exp
    half_width = 0.5 * width_ratio * length * profile / profile.max()
    x = (t - 0.5) * length
    y = rng.uniform(-0.25, 0.25) * length * (t - 0.5) ** 2  # slightly curved midline
    upper = np.stack([x, y + half_width], 1)
    lower = np.stack([x, y - half_width], 1)
    midline = np.stack([x, y], 1)
    return np.concatenate([upper, lower[::-1]]), np.concatenate([upper, midline[::-1]]), midline


def place(points, angle, centre) -> np.ndarray:
    """Rotate local points by `angle` and move them to `centre`; int32 pixels for cv2."""
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return np.round(points @ rotation.T + centre).astype(np.int32)


def draw_blade(image, owner, owner_id, rng, size, kind):
    """Draw a bud, leaf or dry leaf (the distractor twin of a leaf); return its outline and midline (pixels)."""
    if kind == "bud":  # narrow, pointed, light yellow-green
        length = size * rng.uniform(*BUD_LENGTH)
        outline, half, midline = blade(
            rng, length, rng.uniform(0.16, 0.3), rng.uniform(0.35, 0.6), rng.uniform(0.9, 1.4)
        )
        colour = hsv_colour(rng, (27, 42), (90, 190), (170, 245))
        half_factor, rib = 1.12, False
    else:  # broad ellipse or teardrop, darker green (brown when dry), often with a midrib
        length = size * rng.uniform(*LEAF_LENGTH)
        outline, half, midline = blade(
            rng, length, rng.uniform(0.38, 0.65), rng.uniform(0.5, 1.0), rng.uniform(0.6, 1.2)
        )
        if kind == "leaf":
            colour = hsv_colour(rng, (40, 75), (110, 230), (80, 180))
        else:
            colour = hsv_colour(rng, (6, 22), (80, 180), (60, 160))
        half_factor, rib = 0.82, rng.random() < 0.8
    angle, centre = rng.uniform(0, 2 * math.pi), rng.uniform(-0.05, 1.05, 2) * size
    outline, half, midline = (place(p, angle, centre) for p in (outline, half, midline))
    if rng.random() < 0.5:  # a short stalk at the base; it hides what is under it but is not the object
        stalk = np.array([midline[0], midline[0] + (midline[0] - midline[3]) * rng.uniform(0.5, 1.5)], np.int32)
        thickness = max(1, round(size / 200))
        cv2.polylines(image, [stalk], False, shade(colour, 0.7), thickness, cv2.LINE_AA)
        cv2.polylines(owner, [stalk], False, 255, thickness)
    cv2.fillPoly(image, [outline], colour, cv2.LINE_AA)
    cv2.fillPoly(image, [half], shade(colour, half_factor), cv2.LINE_AA)  # the two halves catch light differently
    if rib:
        cv2.polylines(image, [midline[:-2]], False, shade(colour, 1.3), max(1, round(size / 256)), cv2.LINE_AA)
    cv2.fillPoly(owner, [outline], owner_id)
    return outline, midline


def draw_distractor(image, owner, rng, size, kind):
    """Unlabelled clutter: a twig, a stone or a berry (dry leaves go through draw_blade)."""
    if kind == "twig":
        points = [rng.uniform(0, size, 2)]
        for _ in range(int(rng.integers(1, 4))):
            points.append(points[-1] + rng.normal(0, 0.15 * size, 2))
        points = np.round(points).astype(np.int32)
        colour = hsv_colour(rng, (8, 20), (70, 160), (40, 110))
        thickness = max(1, round(size * rng.uniform(0.008, 0.02)))
        cv2.polylines(image, [points], False, colour, thickness, cv2.LINE_AA)
        cv2.polylines(owner, [points], False, 255, thickness)
    elif kind == "stone":
        angles = np.linspace(0, 2 * math.pi, 16, endpoint=False)
        radius = size * rng.uniform(0.03, 0.09) * rng.uniform(0.8, 1.2, 16)
        squash = rng.uniform(0.5, 1.0)
        local = np.stack([np.cos(angles) * radius, np.sin(angles) * radius * squash], 1)
        polygon = place(local, rng.uniform(0, math.pi), rng.uniform(0, size, 2))
        colour = hsv_colour(rng, (0, 30), (0, 50), (80, 190))
        cv2.fillPoly(image, [polygon], colour, cv2.LINE_AA)
        cv2.fillPoly(owner, [polygon], 255)
    else:  # round berry with a highlight
        centre = tuple(int(c) for c in rng.uniform(0, size, 2))
        radius = max(2, round(size * rng.uniform(0.015, 0.04)))
        colour = hsv_colour(rng, (130, 185), (120, 230), (60, 160))
        cv2.circle(image, centre, radius, colour, -1, cv2.LINE_AA)
        cv2.circle(
            image,
            (centre[0] - radius // 3, centre[1] - radius // 3),
            max(1, radius // 4),
            shade(colour, 1.6),
            -1,
            cv2.LINE_AA,
        )
        cv2.circle(owner, centre, radius, 255, -1)


def adjust_lighting(image, rng) -> np.ndarray:
    """Random contrast, brightness, colour cast and a lighting gradient, then optional blur and grain."""
    size = image.shape[0]
    result = image.astype(np.float32)
    result = (result - 128) * rng.uniform(0.7, 1.3) + 128 + rng.uniform(-35, 35)
    result *= rng.uniform(0.9, 1.1, 3).astype(np.float32)  # colour cast
    angle = rng.uniform(0, 2 * math.pi)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    gradient = math.cos(angle) * ramp[None, :] + math.sin(angle) * ramp[:, None]
    result *= (1 + rng.uniform(0, 0.6) * gradient)[..., None]
    if rng.random() < BLUR_RATE:
        result = cv2.GaussianBlur(result, (0, 0), rng.uniform(0.6, 1.6) * size / 256)
    result += rng.uniform(1, 6) * rng.standard_normal(result.shape, dtype=np.float32)
    return np.clip(result, 0, 255).astype(np.uint8)


def draw_image(rng, size, task="detect"):
    """One image and its labels, normalised to 0..1: [(cls, cx, cy, w, h), ...] for detect, the other tasks'
    rows as task_label writes them."""
    image = draw_background(rng, size)
    # owner[y, x] is the id of the shape drawn last at that pixel (0 background, 255 clutter): it gives
    # each object's visible part after occlusion and border cuts.
    owner = np.zeros((size, size), np.uint8)
    count = 0 if rng.random() < EMPTY_IMAGE_RATE else int(rng.integers(1, MAX_OBJECTS + 1))
    items = [("bud" if rng.random() < 0.5 else "leaf") for _ in range(count)]
    clutter = ["twig", "stone", "berry", "dry leaf"]  # never labelled
    items += [str(rng.choice(clutter)) for _ in range(rng.integers(0, MAX_DISTRACTORS + 1))]
    objects = []  # (class id, full polygon area, midline)
    for position in rng.permutation(len(items)):  # random depth order: anything may cover anything
        kind = items[position]
        if kind in ("bud", "leaf", "dry leaf"):
            owner_id = len(objects) + 1 if kind != "dry leaf" else 255
            outline, midline = draw_blade(image, owner, owner_id, rng, size, kind)
            if kind != "dry leaf":
                objects.append((0 if kind == "bud" else 1, cv2.contourArea(outline.astype(np.float32)), midline))
        else:
            draw_distractor(image, owner, rng, size, kind)

    labels = []
    min_side = max(2, MIN_BOX_SIDE * size)
    for owner_id, (cls, area, midline) in enumerate(objects, 1):
        ys, xs = np.nonzero(owner == owner_id)
        if len(xs) < MIN_VISIBLE * area or len(xs) == 0:
            continue  # mostly hidden or outside the image: not a fair target
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        if x1 - x0 < min_side or y1 - y0 < min_side:
            continue
        box = ((x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size)
        extra = task_label(task, owner == owner_id, midline, size) if task != "detect" else ()
        labels.append((cls, *(box if task in ("detect", "pose") else ()), *extra))
    return adjust_lighting(image, rng), labels


def task_label(task: str, visible: np.ndarray, midline: np.ndarray, size: int) -> list[float]:
    """What a label row holds after its class, beyond detection's box (normalised to 0..1): segment, the polygon
    of the visible part (its largest piece); obb, the four corners of its smallest rotated rectangle; pose, after
    the box, (x, y, visible) of the blade's base, middle and tip (0 0 0 when hidden or outside)."""
    if task == "pose":
        row = []
        for x, y in (midline[0], midline[len(midline) // 2], midline[-1]):
            inside = 0 <= x < size and 0 <= y < size and visible[int(y), int(x)]
            row += [x / size, y / size, 2.0] if inside else [0.0, 0.0, 0.0]
        return row
    contours, _ = cv2.findContours(visible.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if task == "obb":
        corners = cv2.boxPoints(cv2.minAreaRect(np.concatenate(contours)))
        return (np.clip(corners, 0, size) / size).flatten().tolist()
    polygon = max(contours, key=cv2.contourArea)
    polygon = cv2.approxPolyDP(polygon, max(0.5, 0.004 * size), True).reshape(-1, 2)
    if len(polygon) < 3:  # a sliver: its bounding rectangle
        x, y, w, h = cv2.boundingRect(polygon.reshape(-1, 1, 2))
        polygon = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
    return (polygon.astype(np.float64) / size).flatten().tolist()


# --------------------------------------------------------------------------------------------------
# check


@verb("data check")
def check(data: str | Path | None = None, task: str | None = None) -> dict:
    """Validate a YOLO data.yaml and its images and labels; return counts per split, raise YoloslimError.

    task (detect, segment, pose, obb): also check that the labels are that task's (polygons, keypoints as the
    yaml's kpt_shape says, rotated boxes); None: boxes or polygons, as detection reads them."""
    yaml_path, names, splits, _ = read_dataset(data, task)
    counts = {split: found for split, (found, _) in splits.items()}
    counts["names"] = names

    def summary(split: str) -> str:
        c = counts[split]
        dropped = f", {c['dropped']} dropped" if c["dropped"] else ""
        return f"{split} {c['images']} images, {c['objects']} objects ({c['backgrounds']} background{dropped})"

    shown = "; ".join(summary(s) for s in ("train", "val"))
    LOGGER.info(f"check: {yaml_path} OK: {shown}; {len(names)} classes: {', '.join(names.values())}")
    return counts


def read_dataset(data, task: str | None = None) -> tuple[Path, dict[int, str], dict, dict]:
    """(data.yaml path, names, {split: (counts, [(image, label rows), ...])}, the yaml) of the usable images, with
    a warning for each kind of dropped one; YoloslimError when the dataset cannot be used at all."""
    if not data:
        raise YoloslimError("pass data=path/to/data.yaml, e.g. data=datasets/tea-synth/data.yaml")
    yaml_path = Path(data).expanduser()
    if yaml_path.is_dir() and (yaml_path / "data.yaml").is_file():
        yaml_path = yaml_path / "data.yaml"
    if not yaml_path.is_file():
        raise YoloslimError(
            f"data file {yaml_path} not found; pass data=path/to/data.yaml "
            "(run 'yoloslim data synth' to write datasets/tea-synth/data.yaml)"
        )
    try:
        spec = yaml.safe_load(yaml_path.read_text(encoding="utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise YoloslimError(
            f"{yaml_path} is not valid YAML ({problem}{where}); fix the syntax "
            "(compare with datasets/tea-synth/data.yaml)"
        ) from None
    if not isinstance(spec, dict):
        raise YoloslimError(f"{yaml_path} is not a YAML mapping; it needs train:, val: and names: keys")
    missing = [f"{key}:" for key in ("train", "val") if not spec.get(key)]
    if spec.get("names") is None and spec.get("nc") is None:
        missing.append("names:")
    if missing:
        raise YoloslimError(
            f"{yaml_path} lacks {', '.join(missing)}; a data.yaml needs train: and val: "
            "(image folders or lists) and names: {0: name, ...}"
        )
    names = parse_names(spec.get("names"), spec.get("nc"), yaml_path)
    root = dataset_root(spec, yaml_path)
    kpt_shape = spec.get("kpt_shape")
    valid = isinstance(kpt_shape, list) and len(kpt_shape) == 2 and all(isinstance(v, int) for v in kpt_shape)
    if task == "pose" and not (valid and kpt_shape[0] >= 1 and kpt_shape[1] in (2, 3)):
        raise YoloslimError(
            f"{yaml_path} lacks kpt_shape: [keypoints, 2 or 3] (got {kpt_shape!r}); a pose dataset needs it, "
            "e.g. kpt_shape: [17, 3] for x, y, visible"
        )
    if task not in (None, *TASKS):
        raise YoloslimError(f"task={task!r} is not one of {', '.join(TASKS)}")

    kpt_shape = kpt_shape if valid and kpt_shape[0] >= 1 and kpt_shape[1] in (2, 3) else None
    splits = {}
    for split in ("train", "val"):
        images = list_images(spec[split], root, split, yaml_path)
        splits[split] = check_split(images, names, split, yaml_path, root, task, kpt_shape)
    unlabelled = {split: found.pop("unlabelled") for split, (found, _) in splits.items()}
    if all(len(missing) == found["images"] for (found, _), missing in zip(splits.values(), unlabelled.values())):
        image = splits["train"][1][0][0]
        folders = {label_path(i).parent for _, items in splits.values() for i, _ in items}
        others = sorted(p.name for f in folders if f.is_dir() for p in f.glob("*.txt"))
        named = f"; {others[0]} and {len(others) - 1} more .txt there name no image" if others else ""
        raise YoloslimError(
            f"{yaml_path}: no label files found for any of its images; they were looked for where Ultralytics "
            f"reads them, labels/ beside images/ (e.g. {label_path(image)} for {image}){named}; put the .txt "
            "labels there, named as their images"
        )
    for split, missing in unlabelled.items():
        count = splits[split][0]["images"]
        if len(missing) == count:
            warn(f"{yaml_path} {split}: none of its {count} images has a label file (e.g. {missing[0]})")
        elif missing:
            warn(
                f"{yaml_path} {split}: {len(missing)} of {count} images have no label file (e.g. {missing[0]}); "
                "Ultralytics reads them as background images, with no objects"
            )
    if not splits["train"][0]["objects"]:
        raise YoloslimError(
            f"{yaml_path} train: none of its {splits['train'][0]['images']} images has a labelled object, so "
            "there is nothing to learn; fill its label files (one 'class cx cy w h' row per object)"
        )
    if not splits["val"][0]["objects"]:
        warn(f"{yaml_path} val: no image has a labelled object, so validation has nothing to score (mAP 0)")
    train = {os.path.realpath(image) for image, _ in splits["train"][1]}
    both = [image for image, _ in splits["val"][1] if os.path.realpath(image) in train]
    if both:
        warn(
            f"{yaml_path}: {len(both)} image{'s' * (len(both) > 1)} in both train and val (e.g. {both[0]}), so "
            "validation scores images the model was trained on"
        )
    return yaml_path, names, splits, spec


def warn(text: str) -> None:
    LOGGER.warning(f"check: warning: {text}")


def parse_names(names, nc, yaml_path) -> dict[int, str]:
    """names: as a list or {id: name}; ids must be 0..n-1, as Ultralytics requires. nc: alone, it names the
    classes class_0.. (as Ultralytics does); with names, it must agree with them."""
    if nc is not None:
        try:
            ok = float(nc).is_integer() and int(float(nc)) >= 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise YoloslimError(f"{yaml_path} nc: {nc} must be a whole number of classes >= 1")
        nc = int(float(nc))
    if names is None:
        return {i: f"class_{i}" for i in range(nc)}
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict):
        raise YoloslimError(f"{yaml_path} names: must be a list or a mapping like {{0: bud, 1: leaf}}")
    try:
        names = {int(k): str(v) for k, v in names.items()}
    except (TypeError, ValueError):
        raise YoloslimError(
            f"{yaml_path} names: has non-integer ids {list(names)}; write it as {{0: name, 1: name, ...}}"
        ) from None
    if sorted(names) != list(range(len(names))):
        raise YoloslimError(
            f"{yaml_path} names: ids are {sorted(names)} but must be 0..{len(names) - 1}; "
            "renumber the classes (and their label rows)"
        )
    if nc is not None and nc != len(names):
        raise YoloslimError(
            f"{yaml_path} says nc: {nc} but names: lists {len(names)} classes; make them agree "
            "(or remove nc:, names: is enough)"
        )
    return names


def dataset_root(spec, yaml_path) -> Path:
    """Folder that train:/val: are relative to: `path:` if given, else the yaml's folder.

    A relative `path:` is read from the current folder, then under Ultralytics' datasets folder, as
    Ultralytics does.
    """
    if not spec.get("path"):
        return yaml_path.parent
    root = Path(str(spec["path"])).expanduser()
    if not root.exists() and not root.is_absolute():
        datasets = Path(ultralytics_utils.DATASETS_DIR)  # read now, not at import: settings can change it
        if (datasets / root).is_dir():
            return (datasets / root).resolve()
    if not root.is_dir():
        raise YoloslimError(
            f"{yaml_path} path: {root} is not a folder (a relative path: is read from the current "
            "folder, then from Ultralytics' datasets folder); fix it, or remove path: so paths are "
            "relative to the yaml's folder"
        )
    return root


def is_image(path) -> bool:
    return str(path).rpartition(".")[-1].lower() in IMAGE_SUFFIXES


def list_images(entry, root, split, yaml_path) -> list[Path]:
    """The images of a split: a folder (searched recursively), a .txt list of paths, or a list of those."""
    images = []
    for item in entry if isinstance(entry, list) else [entry]:
        if not isinstance(item, str):
            raise YoloslimError(f"{yaml_path} {split}: {item!r} is not a path; give a folder or a .txt list")
        location = root / item
        if location.is_dir():
            images += sorted(p for p in location.rglob("*.*") if is_image(p) and p.is_file())
        elif location.is_file():
            # Like Ultralytics: './x' lines are relative to the list's folder, other relative lines to
            # the current folder.
            lines = [x.strip() for x in location.read_text(encoding="utf-8-sig", errors="replace").splitlines()]
            listed = [location.parent / x[2:] if x.startswith("./") else Path(x) for x in lines if is_image(x)]
            absent = [str(p) for p in listed if not p.is_file()]
            if absent:
                raise YoloslimError(
                    f"{yaml_path} {split}: {len(absent)} images listed in {location} not found: "
                    f"{', '.join(absent[:3])}{' ...' if len(absent) > 3 else ''}; fix the list "
                    "('./' lines are relative to the list's folder)"
                )
            images += listed
        else:
            raise YoloslimError(
                f"{yaml_path} {split}: {location} not found ({split}: {item!r} is resolved "
                f"against {root}); fix the path in the yaml or create the folder"
            )
    if not images:
        raise YoloslimError(
            f"{yaml_path} {split}: no images in {entry!r} (under {root}); put .jpg/.png images "
            "there, with their labels in the matching labels/ folder"
        )
    return images


def label_path(image) -> Path:
    """Ultralytics' rule: the last '/images/' becomes '/labels/' and the suffix becomes .txt."""
    images_dir, labels_dir = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(labels_dir.join(str(image).rsplit(images_dir, 1)).rsplit(".", 1)[0] + ".txt")


def image_problem(path: Path) -> str | None:
    """Why Ultralytics would drop this image, or None. Its own check (ultralytics.data.utils.check_image)
    rewrites a JPEG without an end marker, so it cannot be called on a user's files; its rules are
    followed here read-only: PIL must open and verify it, both sides >= 10 px, a known format, and a JPEG
    without an end marker must decode in full (Ultralytics re-saves those; truncated ones fail)."""

    try:
        # Ultralytics' PIL patch looks for a HEIF plugin at every file PIL cannot identify, in two log lines each
        with quiet_ultralytics(SILENT), Image.open(path) as im:
            im.verify()
            width, height = im.size
            kind = (im.format or "").lower()
        if width < 10 or height < 10:
            return f"{width}x{height} px, smaller than 10 px"
        if kind not in IMAGE_SUFFIXES | {"jpeg2000"}:
            return f"format {kind or 'unknown'} is not an image format Ultralytics reads"
        if kind in ("jpeg", "jpg", "mpo"):
            with open(path, "rb") as f:
                f.seek(-2, 2)
                ended = f.read() == b"\xff\xd9"
            if not ended:
                with Image.open(path) as im:
                    im.load()
    except Exception as e:  # PIL raises many kinds for a bad file
        return unreadable(e)
    return None


def unreadable(e: Exception) -> str:
    """Why PIL cannot read a file, in one line."""
    if isinstance(e, ModuleNotFoundError):  # Ultralytics' retry with a HEIF plugin that is not installed
        return "not an image PIL can identify"
    return str(e).split("\n")[0] or type(e).__name__


def label_problem(fields: list[str], names, task: str | None = None, kpt_shape=None) -> tuple[str, str] | None:
    """(kind, detail) for a label row Ultralytics would reject, or None. Rows are `class cx cy w h`, or
    `class x1 y1 x2 y2 ...` polygons, which Ultralytics turns into their boxes; for task=segment polygons, for
    obb four corners, for pose the box and kpt_shape's keypoints."""
    try:
        values = [float(x) for x in fields]
    except ValueError:
        return "malformed", "not numbers"
    if task == "pose":
        want = 5 + kpt_shape[0] * kpt_shape[1]
        if len(values) != want:
            return "task", f"{len(values)} numbers, not {want} (class, box, {kpt_shape[0]} x {kpt_shape[1]})"
    elif len(values) != 5 and not (len(values) > 6 and len(values) % 2 == 1):
        return "malformed", f"{len(values)} numbers"
    elif task == "segment" and len(values) == 5:
        return "task", "a box, not a polygon"
    elif task == "obb" and len(values) != 9:
        return "task", f"{len(values)} numbers, not 9 (class and four corners)"
    if not values[0].is_integer():
        return "malformed", "class id is not a whole number"
    coords = values[1:]
    if task == "pose" and kpt_shape[1] == 3:  # visibility flags (0, 1, 2) are not coordinates
        coords = [v for i, v in enumerate(coords) if i < 4 or (i - 4) % 3 != 2]
    if not all(-0.01 <= v <= 1.01 for v in coords):  # Ultralytics' 1% tolerance; also catches nan and inf
        return "range", "coordinates outside 0..1"
    if int(values[0]) not in names:
        return "class", f"class {int(values[0])}"
    return None


def check_split(images, names, split, yaml_path, root, task=None, kpt_shape=None) -> tuple[dict, list]:
    """Count a split's images and objects, and list the usable ones with their label rows. An image Ultralytics
    would drop (it cannot be read, or a label row is malformed, out of range or of an unknown class) is named
    in a warning and dropped, as Ultralytics does.
    Only a split with no usable image is an error."""
    hints = {
        "image": "images that cannot be read",
        "malformed": "images with malformed label rows (a row is class cx cy w h, or a class and polygon points)",
        "range": "images with label coordinates outside 0..1 (normalise by the image width and height)",
        "class": f"images with unknown class ids (names: has ids 0..{len(names) - 1})",
        "mixed": "images whose labels mix boxes and polygons",
        "task": f"images whose label rows are not {task} labels (see yoloslim data synth task={task})",
    }
    dropped = {kind: [] for kind in hints}
    objects = backgrounds = zero_size = 0
    usable = []

    def shown(path):
        try:
            return path.relative_to(root)
        except ValueError:
            return path

    # a pose dataset read for boxes: Ultralytics keeps each keypoint row's box
    pose_length = 5 + kpt_shape[0] * kpt_shape[1] if kpt_shape else None
    boxes_of_pose = task in (None, "detect") and pose_length is not None
    unlabelled, readers = [], {}  # label file -> the images that read it
    for image in images:
        problem = image_problem(image)
        if problem:
            dropped["image"].append(f"{shown(image)} ({problem})")
            continue
        label = label_path(image)
        readers.setdefault(label, {})[os.path.realpath(image)] = image.name
        if not label.is_file():
            unlabelled.append(shown(label))
        rows = label.read_text(encoding="utf-8-sig", errors="replace").splitlines() if label.is_file() else []
        rows = [(number, row.split()) for number, row in enumerate(rows, 1) if row.strip()]
        as_task = lambda fields: "pose" if boxes_of_pose and len(fields) == pose_length else task  # noqa: E731
        found = ((number, label_problem(fields, names, as_task(fields), kpt_shape)) for number, fields in rows)
        bad = next(((number, problem) for number, problem in found if problem), None)
        box_rows = {len(f) == 5 or (boxes_of_pose and len(f) == pose_length) for _, f in rows}
        if bad is None and task != "pose" and len(box_rows) > 1:
            bad = (rows[0][0], ("mixed", "boxes and polygons"))
        if bad:
            number, (kind, detail) = bad
            dropped[kind].append(f"{shown(label)}:{number} ({detail})")
            continue
        usable.append((image, [fields for _, fields in rows]))
        backgrounds += not rows
        objects += len(rows)
        zero_size += sum(
            (len(f) in (5, pose_length) or task == "pose") and (float(f[3]) <= 0 or float(f[4]) <= 0) for _, f in rows
        )

    total = sum(len(v) for v in dropped.values())
    for kind, items in dropped.items():
        if items:
            warn(
                f"{yaml_path} {split}: {len(items)} {hints[kind]}, dropped as Ultralytics drops them: "
                f"{', '.join(map(str, items[:3]))}{' ...' if len(items) > 3 else ''}"
            )
    if zero_size:
        warn(f"{yaml_path} {split}: {zero_size} label boxes of zero width or height (they teach nothing)")
    shared = [f"{shown(label)}: {', '.join(sorted(i.values()))}" for label, i in readers.items() if len(i) > 1]
    if shared:  # a.jpg and a.png read a.txt both (Ultralytics names a label by folder and stem)
        what = "1 label file is" if len(shared) == 1 else f"{len(shared)} label files are"
        warn(
            f"{yaml_path} {split}: {what} shared by several images ({'; '.join(shared[:3])}), so each of them "
            "gets the same boxes; rename the images so that each has its own"
        )
    if not usable or (not objects and total):  # background images alone teach nothing
        first = next(kind for kind, items in dropped.items() if items)
        raise YoloslimError(
            f"{yaml_path} {split}: none of its {len(images)} images is usable ({total} dropped, e.g. "
            f"{dropped[first][0]}: {hints[first]}); fix the images or their label rows"
        )
    if total:
        warn(f"{yaml_path} {split}: {total} of {len(images)} images dropped; training uses the other {len(usable)}")
    found = {"images": len(usable), "objects": objects, "backgrounds": backgrounds, "dropped": total}
    return {**found, "unlabelled": unlabelled}, usable
