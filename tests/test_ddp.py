"""Multi-GPU training as Ultralytics runs it: every trainer class rebuilt from Ultralytics' DDP launch file in a
fresh process, and the penalty under torch DDP (two gloo processes on CPU) stepping both ranks to identical gammas,
equal to one process with the same total batch."""

import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
import torch.distributed as dist
from helpers import tiny_train_args

import yoloslim
from yoloslim.sparse_run import SparsityRun
from yoloslim.trainer import TRAINERS

pytestmark = pytest.mark.slow  # real trainings and process launches

TASK_MODELS = {
    "detect": "yolov8n.yaml",
    "segment": "yolov8n-seg.yaml",
    "pose": "yolov8n-pose.yaml",
    "obb": "yolov8n-obb.yaml",
}


@pytest.fixture(scope="module")
def task_data(tmp_path_factory):
    from yoloslim.data import synth

    root = tmp_path_factory.mktemp("tasks")
    return {task: synth(root / task, train=8, val=4, imgsz=64, seed=0, task=task) for task in TASK_MODELS}


@pytest.mark.parametrize("task", list(TASK_MODELS))
@pytest.mark.parametrize("kind", ["slim", "sparse", "using"])
def test_every_trainer_survives_the_ddp_launch_file(task, kind, task_data, tmp_path):
    """The launch file Ultralytics writes for its DDP workers, run in a fresh process: the worker rebuilds the
    trainer class (with SparseTrainer.using()'s settings), trains, and writes the run (sparse: its sparsity too)."""
    from ultralytics.utils.dist import ddp_cleanup, generate_ddp_file

    cls = TRAINERS[task]["sparse" if kind != "slim" else "slim"]
    cls = cls.using(sr=2.0, penalty="lowest") if kind == "using" else cls
    trainer = cls(overrides={"model": TASK_MODELS[task], "data": str(task_data[task]), **tiny_train_args(tmp_path)})
    launch = generate_ddp_file(trainer)
    try:
        run = subprocess.run([sys.executable, launch], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    finally:
        ddp_cleanup(trainer, launch)
    assert run.returncode == 0, run.stderr[-3000:]
    results = pd.read_csv(trainer.save_dir / "results.csv", skipinitialspace=True)
    assert ("sparsity/mean_gamma" in results.columns) == (kind != "slim")
    if kind == "using":  # the worker kept .using()'s settings: sr=2 through the push
        assert results["sparsity/sr"].iloc[0] == 2.0 and (trainer.save_dir / "gammas.csv").exists()


class Host(SparsityRun):
    """What a trainer gives SparsityRun: its args, epochs, model (here DDP-wrapped), optimizer and batch."""

    def __init__(self, model, batch: int):
        self.args = yoloslim.trainer.check_sparse_settings({"sr": 50.0, "penalty": "wide", "sr_share": 0.5})
        self.args = type("Args", (), {**self.args, "nbs": batch})()
        self.epoch, self.epochs, self.start_epoch, self.ema, self.model = 0, 10, 0, None, model
        self.batch_size, self.accumulate, self.device, self.save_dir = batch, 1, torch.device("cpu"), None
        self.optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
        self.setup_sparsity(steps_per_epoch=1)


def train_steps(rank: int, world: int, steps: int = 3) -> torch.Tensor:
    """`steps` optimizer steps of a seeded yolov8n on a seeded batch of 4 images, split over `world` processes as
    Ultralytics splits it (each rank its share, the loss times world_size, DDP averaging the gradients)."""
    from yoloslim.seeded import seeded_model

    model = seeded_model("yolov8n.yaml", 0).train()
    for m in model.modules():  # batch statistics of 2 images differ from those of 4: fixed ones, as in eval
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    wrapped = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    host = Host(wrapped, batch=4)
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    share = images.chunk(world)[rank]
    for _ in range(steps):
        host.optimizer.zero_grad()
        out = wrapped(share)
        # a sum over the images, as Ultralytics' losses are: each rank's share times world_size, averaged by DDP,
        # is then the whole batch's
        loss = 1e-3 * sum(t.float().flatten(1).mean(1).sum() for t in tensors(out)) * world
        loss.backward()
        host.optimizer.step()
    return torch.cat([gamma.detach().flatten() for _, gamma in host.gammas])


def tensors(out) -> list[torch.Tensor]:
    """Every tensor of a head's training output (a tensor, a list of them, or Ultralytics' dict of them)."""
    if torch.is_tensor(out):
        return [out]
    items = out.values() if isinstance(out, dict) else out
    return [t for item in items for t in tensors(item)]


def ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.save(train_steps(rank, world), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_the_penalty_under_ddp_matches_one_process(tmp_path):
    from ultralytics.utils.dist import find_free_network_port

    torch.multiprocessing.spawn(ddp_worker, args=(2, find_free_network_port(), str(tmp_path / "g")), nprocs=2)
    ranks = [torch.load(tmp_path / f"g.{r}") for r in (0, 1)]
    single = train_steps(0, 1)
    assert torch.equal(ranks[0], ranks[1])  # both ranks step to the same gammas
    assert torch.allclose(ranks[0], single, atol=1e-5)  # as one process with the whole batch
    assert (single == 0).float().mean() > 0.05  # the penalty did act: gammas at exact zero
