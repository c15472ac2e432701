"""Build a real detection dataset offline: tree crowns in aerial images, from the DeepForest package's samples.

    python scripts/fetch_trees.py                     # -> datasets/trees/ (full size), datasets/trees-tiles160/
    python scripts/fetch_trees.py size=320 scale=1    # full-resolution tiles for a GPU

The DeepForest wheel (MIT licence, from PyPI) ships NEON aerial images (10 cm per pixel) with their
tree-crown boxes in Pascal VOC xml. Three of them are used, one class ("Tree"); SOAP_061 is left out because
it labels "Alive"/"Dead" instead. Validation is a whole image from another scene than the training ones'
tiles (2019_YELL_2_541000_4977000_image_crop: 279 crowns), so overlapping tiles never leak into it.
Made with the verbs a user has: `yoloslim data convert` (VOC -> YOLO) then `yoloslim data tile`.
The data is downloaded and built here, not committed.
"""

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from yoloslim.cli import parse_args
from yoloslim.convert import convert, tile

PACKAGE = "deepforest==2.1.0"
TRAIN = ["2019_YELL_2_528000_4978000_image_crop2", "OSBS_029"]
VAL = "2019_YELL_2_541000_4977000_image_crop"
IMAGES = {"OSBS_029": ".tif"}  # its xml names the .tif; the others are .png


def main(argv: list[str]) -> Path:
    options = {"size": 160, "scale": 0.5, "overlap": 0.2, "out": "datasets", **parse_args(argv)}
    out = Path(options["out"])
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", PACKAGE, "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("deepforest-*.whl"))
        source = Path(tmp) / "voc"
        source.mkdir()
        with zipfile.ZipFile(wheel) as z:
            for stem in [*TRAIN, VAL]:
                for suffix in (".xml", IMAGES.get(stem, ".png")):
                    (source / f"{stem}{suffix}").write_bytes(z.read(f"deepforest/data/{stem}{suffix}"))
        full = convert(source=source, out=out / "trees", val=VAL, overwrite=True)
    size, scale = int(options["size"]), float(options["scale"])
    name = f"trees-tiles{size}" + (f"-x{scale:g}" if scale != 0.5 else "")
    return tile(
        data=full,
        out=out / name,
        size=size,
        scale=scale,
        overlap=float(options["overlap"]),
        overwrite=True,
    )


if __name__ == "__main__":
    print(main(sys.argv[1:]))
