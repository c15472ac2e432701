"""yoloslim: Network Slimming (Liu et al., ICCV 2017) for Ultralytics YOLO detectors."""

import os

# Offline by default: Ultralytics must never try to download weights, fonts or datasets for us.
# Set before anything imports ultralytics; a user can still export YOLO_OFFLINE=0 to opt out.
os.environ.setdefault("YOLO_OFFLINE", "1")

__version__ = "0.1.0"


class YoloslimError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it (one line)."""
