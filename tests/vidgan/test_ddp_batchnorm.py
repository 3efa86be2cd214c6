"""Cross-replica batch norm: with `sync_batchnorm` on, FrameBatchNorm normalises over both gloo ranks."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from torch.testing import assert_close

JOB = Path(__file__).with_name("ddp_batchnorm_job.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_job(out: Path, sync: bool) -> tuple[dict, dict]:
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun),
        "--nproc_per_node=2",
        f"--master_port={free_port()}",
        str(JOB),
        str(out),
        str(int(sync)),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
           "PYTHONPATH": os.pathsep.join([str(JOB.parent), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return tuple(torch.load(out / f"rank{r}.pt") for r in (0, 1))


def test_sync_batchnorm_switch_gives_every_rank_the_global_statistics(tmp_path):
    rank0, rank1 = run_job(tmp_path / "on", sync=True)
    calls0, calls1 = rank0["calls"], rank1["calls"]
    assert len(calls0) == len(calls1) > 20  # every training-mode batch norm of G, in D and G steps
    for a, b in zip(calls0, calls1):
        assert_close(a["mean"], b["mean"], rtol=1e-5, atol=1e-6)
        assert_close(a["var"], b["var"], rtol=1e-5, atol=1e-6)
        # equal batch sizes: the global mean is the ranks' average, the variance the pooled one
        assert_close(a["mean"], (a["local_mean"] + b["local_mean"]) / 2, rtol=1e-4, atol=1e-5)
        second_moment = (a["local_var"] + a["local_mean"] ** 2 + b["local_var"] + b["local_mean"] ** 2) / 2
        assert_close(a["var"], second_moment - a["mean"] ** 2, rtol=1e-3, atol=1e-5)
    assert max((a["local_mean"] - b["local_mean"]).abs().max().item() for a, b in zip(calls0, calls1)) > 1e-2
    for key, value in rank0["state"].items():  # the all-reduces in G's forward leave DDP's lockstep intact
        assert torch.equal(value, rank1["state"][key]), key


def test_without_the_switch_each_rank_keeps_its_own_statistics(tmp_path):
    rank0, rank1 = run_job(tmp_path / "off", sync=False)
    for calls in (rank0["calls"], rank1["calls"]):
        assert len(calls) > 20
        for call in calls:  # the fused per-rank batch norm: its own batch's statistics, to fp32 rounding
            assert_close(call["mean"], call["local_mean"], rtol=1e-5, atol=1e-6)
            assert_close(call["var"], call["local_var"], rtol=1e-5, atol=1e-6)
    gap = max((a["mean"] - b["mean"]).abs().max().item() for a, b in zip(rank0["calls"], rank1["calls"]))
    assert gap > 1e-2, gap


def test_the_plugin_switches_every_frame_batch_norm_on_and_back_off():
    from ganforge.layer_sync import BatchStatisticsSync
    from vidgan.models import VideoGenerator
    from vidgan.models.blocks import FrameBatchNorm

    g = VideoGenerator(1, 16, 2, 3, [8, 8], latent_dim=4)
    norms = [m for m in g.modules() if isinstance(m, FrameBatchNorm)]
    assert len(norms) == 9 and not any(m.sync_statistics for m in norms)  # 2 per block, 2 groups, + output
    plugin = BatchStatisticsSync()
    assert plugin.apply(g) is g and all(m.sync_statistics for m in norms)
    plugin.revert(g)
    assert not any(m.sync_statistics for m in norms)
