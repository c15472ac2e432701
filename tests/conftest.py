"""Fixtures; the plain helpers are in helpers.py."""

import os

os.environ.setdefault("YOLO_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture
def image():
    return torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(123))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A real generated YOLO dataset, small enough for one-epoch runs at imgsz 64."""
    from yoloslim.data import synth

    return synth(tmp_path_factory.mktemp("data") / "tea", train=16, val=8, imgsz=64, seed=0)
