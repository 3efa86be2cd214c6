"""2-process DDP (CPU, gloo, torchrun) of the ring GAN against one process on the same global batch."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from torch.testing import assert_close

JOB = Path(__file__).with_name("ddp_ring_job.py")
GLOBAL_BATCH, STEPS = 64, 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], tmp: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=tmp)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]


def test_two_process_ddp_matches_single_process(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    run(
        [str(torchrun), "--nproc_per_node=2", f"--master_port={free_port()}", str(JOB), str(ddp_dir), "2"]
        + [str(GLOBAL_BATCH), str(STEPS)],
        tmp_path,
    )
    run([sys.executable, str(JOB), str(single_dir), "1", str(GLOBAL_BATCH), str(STEPS)], tmp_path)
    rank0, rank1 = (torch.load(ddp_dir / f"rank{r}.pt") for r in (0, 1))
    single = torch.load(single_dir / "rank0.pt")
    assert rank0["strategy"] == "DDPStrategy" and single["strategy"] != "DDPStrategy"
    groups = {"generator.", "discriminator.", "ema.model."}
    assert {next(g for g in groups if k.startswith(g)) for k in rank0["state"]} == groups
    for key, value in rank0["state"].items():
        # Both ranks apply the same all-reduced gradients: bitwise identical weights.
        assert torch.equal(value, rank1["state"][key]), key
        # Against one process on the concatenated batch only the summation order differs (two
        # half-batch means averaged by the all-reduce): measured ~1e-7 after 1-5 steps. Many more
        # steps amplify rounding chaotically (Adam rescales tiny gradients; ~1e-2 after 30 steps),
        # which is why the comparison stops at 5.
        assert_close(value, single["state"][key], rtol=1e-5, atol=1e-6, msg=key)
    state = rank0["state"]
    # EMA (decay 0.9) trails G after 5 updates, and G moved away from the EMA's start (its init).
    assert not torch.equal(state["generator.0.weight"], state["ema.model.0.weight"])
