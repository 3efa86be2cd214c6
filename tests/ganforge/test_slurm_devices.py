"""ganforge.slurm_devices in simulated Slurm tasks: both GPU binding styles give layouts Lightning takes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.exceptions import MisconfigurationException
from lightning_utilities.core.rank_zero import rank_zero_only as utils_rank_zero_only
from pytorch_lightning.utilities.rank_zero import rank_zero_only as pl_rank_zero_only

from ganforge.slurm_devices import SlurmLayoutError, TaskLayout, main, task_layout, visible_gpus

# Task 6 of a 2-node x 4-GPU job: the third task on the second node.
JOB = {
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NAME": "train",
    "SLURM_NTASKS": "8",
    "SLURM_NTASKS_PER_NODE": "4",
    "SLURM_TASKS_PER_NODE": "4(x2)",
    "SLURM_JOB_NUM_NODES": "2",
    "SLURM_NNODES": "2",
    "SLURM_NODELIST": "gpu[01-02]",
    "SLURM_PROCID": "6",
    "SLURM_LOCALID": "2",
    "SLURM_NODEID": "1",
}
ALL_VISIBLE = {**JOB, "CUDA_VISIBLE_DEVICES": "0,1,2,3"}  # --gpus-per-node=4
ONE_PER_TASK = {**JOB, "CUDA_VISIBLE_DEVICES": "2"}  # --gpus-per-task=1 / --gpu-bind=single:1
SHARED_PAIR = {**JOB, "CUDA_VISIBLE_DEVICES": "2,3"}  # --gpu-bind=closest on a 2-socket node


def test_layout_of_each_binding_style():
    assert task_layout(ALL_VISIBLE, "gpu", visible_gpus(ALL_VISIBLE)) == TaskLayout(4, 2, "all visible")
    bound = {"SLURM_NTASKS_PER_NODE": "1", "SLURM_LOCALID": "0", "SLURM_NODEID": "6"}
    assert task_layout(ONE_PER_TASK, "gpu", visible_gpus(ONE_PER_TASK)) == TaskLayout(
        1, 8, "one per task", bound
    )
    assert task_layout(ONE_PER_TASK, "cpu") == TaskLayout(4, 2, "cpu")
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "NoDevFiles"}) == 0 and visible_gpus({}) is None


@pytest.mark.parametrize(
    ("env", "gpus", "message"),
    [
        (SHARED_PAIR, 2, "task 6 sees 2 GPU(s) (CUDA_VISIBLE_DEVICES=2,3) with 4 task(s) per node"),
        (JOB, 0, "--gpus-per-task=1 or --gpu-bind=single:1"),
        ({k: v for k, v in JOB.items() if "TASKS_PER_NODE" not in k}, 4, "SLURM_NTASKS_PER_NODE"),
        ({**JOB, "SLURM_NTASKS_PER_NODE": "four"}, 4, "SLURM_NTASKS_PER_NODE='four' is not a count"),
    ],
)
def test_unusable_layouts_fail_with_one_line(env, gpus, message):
    with pytest.raises(SlurmLayoutError) as err:
        task_layout(env, "gpu", gpus)
    assert message in str(err.value) and "\n" not in str(err.value)


def simulated_trainer(monkeypatch, env: dict[str, str], devices: int, num_nodes: int) -> pl.Trainer:
    """A GPU DDP Trainer built inside the task environment `env`, CUDA counting CUDA_VISIBLE_DEVICES."""
    for key in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: visible_gpus(env))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    # The DDP strategy sets the process-wide rank_zero_only.rank to the simulated rank (6): put it back
    # after the test, or every later rank-zero-only call in this worker (W&B, warnings) does nothing.
    for holder in (pl_rank_zero_only, utils_rank_zero_only):
        monkeypatch.setattr(holder, "rank", getattr(holder, "rank", 0))
    return pl.Trainer(
        accelerator="gpu",
        devices=devices,
        num_nodes=num_nodes,
        strategy="ddp",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


@pytest.mark.parametrize(("env", "device_index"), [(ALL_VISIBLE, 2), (ONE_PER_TASK, 0)])
def test_lightning_accepts_the_layout_and_keeps_slurm_ranks(monkeypatch, env, device_index):
    layout = task_layout(env, "gpu", visible_gpus(env))
    trainer = simulated_trainer(monkeypatch, {**env, **layout.env}, layout.devices, layout.num_nodes)
    assert (trainer.world_size, trainer.global_rank) == (8, 6)
    assert trainer.strategy.root_device == torch.device("cuda", device_index)
    assert trainer.strategy.distributed_sampler_kwargs == {"num_replicas": 8, "rank": 6}


def test_one_gpu_per_task_with_node_devices_is_what_lightning_rejects(monkeypatch):
    """The failure the layout avoids: devices=4 while the task sees one GPU."""
    with pytest.raises(MisconfigurationException, match="only has"):
        simulated_trainer(monkeypatch, ONE_PER_TASK, devices=4, num_nodes=2)


def test_task_launcher_appends_the_layout_and_sets_the_variables():
    env = {**ONE_PER_TASK, "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    keys = ["SLURM_LOCALID", "SLURM_NTASKS_PER_NODE", "SLURM_NODEID"]
    show = f"import json, os, sys; print(json.dumps([sys.argv[1:], [os.environ[k] for k in {keys}]]))"
    argv = [sys.executable, "-m", "ganforge.slurm_devices", "gpu", sys.executable, "-c", show, "fit"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    expected = ["fit", "--trainer.accelerator", "gpu", "--trainer.devices", "1", "--trainer.num_nodes", "8"]
    assert json.loads(done.stdout) == [expected, ["0", "1", "6"]]
    failed = subprocess.run(argv, env={**env, **SHARED_PAIR}, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2 and failed.stderr.startswith("slurm_devices: error: task 6 sees 2 GPU(s)")
    missing = subprocess.run(
        [*argv[:4], "/nonexistent/vidgan", "fit"], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith("cannot run '/nonexistent/vidgan': No such file or directory")


@pytest.mark.parametrize(
    ("yaml_text", "workers"),
    [
        ("data:\n  batch_size: 4\n  num_workers: 8\n", 8),  # vidgan: plain data section
        ("data:\n  class_path: t2i.data.X\n  init_args:\n    num_workers: 1\n", 1),  # t2i: subclass form
        ("data:\n  batch_size: 256\n", 0),  # the ring toy: no workers
    ],
)
def test_workers_of_a_printed_config(monkeypatch, capsys, yaml_text, workers):
    monkeypatch.setattr(sys, "stdin", io.StringIO(yaml_text))
    assert main(["workers"]) == 0
    assert capsys.readouterr().out.strip() == str(workers)
