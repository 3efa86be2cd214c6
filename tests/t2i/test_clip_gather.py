"""The clip loss under 2-process DDP (CPU, gloo): logits cover the global batch, gradients as one process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from clip_gather_case import GLOBAL_BATCH, tiny_case
from torch.testing import assert_close

from t2i.models.contrastive import symmetric_infonce

JOB = Path(__file__).with_name("clip_gather_job.py")
WORLD = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(tmp_path: Path) -> list[dict]:
    """Start WORLD gloo ranks of the job; their saved results in rank order."""
    base = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    procs = [
        subprocess.Popen(
            [sys.executable, str(JOB), str(tmp_path / f"rank{rank}.pt")],
            env={**base, "RANK": str(rank), "WORLD_SIZE": str(WORLD)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(WORLD)
    ]
    for proc in procs:
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output[-4000:]
    return [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(WORLD)]


def test_two_ranks_contrast_against_the_global_batch_like_one_process(tmp_path):
    ranks = run_ranks(tmp_path)
    towers, images, texts = tiny_case()
    image, text = towers(images, texts)
    loss, _ = symmetric_infonce(image, text, towers.logit_scale, gather=True)  # one process: no DDP
    loss.backward()

    for rank, result in enumerate(ranks):
        # Each rank holds all 8 captions as candidates for its 4 images, its own at rows 4*rank...
        assert_close(result["gathered"], text.detach(), rtol=0, atol=0)
        assert result["first"] == rank * GLOBAL_BATCH // WORLD
        # ... so the ranks' mean loss is the global batch's loss, not a mean of in-batch ones,
        assert_close(result["mean_loss"], loss.detach(), rtol=1e-6, atol=1e-6)
        assert (result["local_loss"] - loss.detach()).abs() > 0.05
        # ... and DDP's averaged gradients equal one process's on the global batch.
        for name, param in towers.named_parameters():
            assert_close(result["grads"][name], param.grad, rtol=1e-5, atol=1e-7, msg=name)
