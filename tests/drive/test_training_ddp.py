"""DDP: two gloo ranks on CPU compute the one-process gradient of the same global batch; torchrun works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp

from common.strict_config import load_config
from drive.training.data import AugmentedWindows
from drive.training.distributed import DistContext
from drive.training.train_config import TrainConfig
from drive.training.train_metrics import read_metrics
from drive.training.trainer import Trainer
from policies.checkpoint import read_checkpoint
from tests.drive.bar_drives import BarWindows, write_bar_drives

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "batch": 4,
    "data": {"window": 4},
    "progress": False,
    "threads": 1,
    "device": "cpu",
    "augment": {"shadow_probability": 1.0},
    "amp_bf16": False,  # bf16 rounds each rank's partial weight-gradient sums: compare in float32
}


def test_two_gloo_ranks_give_the_one_process_first_step_gradients(tmp_path):
    out_file = tmp_path / "ddp.pt"
    mp.spawn(
        _ddp_entry,
        args=(2, str(tmp_path / "init"), TINY, str(out_file)),
        nprocs=2,
        join=True,
    )
    ddp = torch.load(out_file)
    assert ddp["windows"] == 2  # each rank held half of the global batch of 4

    config = load_config(TrainConfig, TINY)
    data = AugmentedWindows(BarWindows(12, config.data.window), config.augment, config.seed)
    single = Trainer(config, data, ctx=DistContext(device=torch.device("cpu")))
    single.sampler.set_epoch(0)
    frames, labels = next(iter(single.loader))
    single.optimizer.zero_grad()
    loss = single.backward(frames, labels)
    torch.testing.assert_close(ddp["loss"], loss, rtol=1e-5, atol=1e-7)
    grads = {n: p.grad for n, p in single.policy.named_parameters() if p.grad is not None}
    assert grads.keys() == ddp["grads"].keys()
    for name, grad in grads.items():
        torch.testing.assert_close(ddp["grads"][name], grad, rtol=1e-4, atol=1e-6, msg=name)


def _ddp_entry(rank, world_size, init_file, TINY, out_file):
    from tests.drive.ddp_worker import first_step_gradients

    first_step_gradients(rank, world_size, init_file, TINY, out_file)


def test_torchrun_two_cpu_ranks_end_to_end(tmp_path):
    data = write_bar_drives(tmp_path / "data", episodes=3, frames=40)
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        "-m",
        "drive",
    ]
    cmd += ["train", "--data", str(data), "--out", str(out)]
    for item in ("max_steps=3", "batch=4", "data.window=4", "progress=false", "device=cpu", "threads=1"):
        cmd += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Own session, so a hung rank cannot outlive the test: on timeout the whole group is killed.
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-3000:]
    start = next(r for r in read_metrics(out / "metrics.jsonl") if r.get("event") == "start")
    assert start["world_size"] == 2
    assert read_checkpoint(out / "checkpoints" / "last.pt")["step"] == 3
