"""2-process DDP (CPU, gloo, torchrun): the ring GAN against one process on the same global batch, the
gradient traffic of the gan_ddp strategy, and per-rank noise and RNG resumption (tiny VideoGAN)."""

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


def torchrun(script: Path, tmp: Path, *args: str) -> None:
    """`script ARGS` in 2 gloo processes under torchrun."""
    launcher = Path(sys.executable).with_name("torchrun")
    run([str(launcher), "--nproc_per_node=2", f"--master_port={free_port()}", str(script), *args], tmp)


def test_two_process_ddp_matches_single_process(tmp_path):
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    torchrun(JOB, tmp_path, str(ddp_dir), "2", str(GLOBAL_BATCH), str(STEPS))
    run([sys.executable, str(JOB), str(single_dir), "1", str(GLOBAL_BATCH), str(STEPS)], tmp_path)
    rank0, rank1 = (torch.load(ddp_dir / f"rank{r}.pt") for r in (0, 1))
    single = torch.load(single_dir / "rank0.pt")
    assert rank0["strategy"] == "GANDDPStrategy" and single["strategy"] == "SingleDeviceStrategy"
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


def test_gan_ddp_all_reduces_only_the_stepped_network_once_per_update(tmp_path):
    torchrun(JOB.with_name("ddp_sync_job.py"), tmp_path, str(tmp_path / "out"))
    rank0, rank1 = (torch.load(tmp_path / "out" / f"rank{r}.pt") for r in (0, 1))
    ratios = {}
    for key, counts in rank0.items():
        if key in ("plain", "nan"):
            continue
        strategy, k = key
        # Float32 gradients of the parameters the optimisers stepped: per D, D, G cycle 2x D and 1x G.
        stepped = 4 * (counts["d_steps"] * counts["d_params"] + counts["g_steps"] * counts["g_params"])
        ratios[key] = counts["bytes"] / stepped
        # The ranks trained on different data: equal weights prove every update was all-reduced.
        for name, value in counts["state"].items():
            assert torch.equal(value, rank1[key]["state"][name]), (key, name)
        if strategy == "gan_ddp":
            assert counts["wrappers"] == ["generator", "discriminator"]
            # One bucket per update (the ring's networks fit one 25 MB bucket each): with k = 2 the
            # first micro-batch of each update runs under no_sync, so 12 backwards make 6 all-reduces.
            assert counts["allreduces"] == counts["d_steps"] + counts["g_steps"] == 12 // k
    assert ratios[("gan_ddp", 1)] <= 1.1 and ratios[("gan_ddp", 2)] <= 1.1, ratios
    # The whole-module wrapper with find_unused_parameters also sends the idle network's zeros.
    assert ratios[("ddp_find_unused_parameters_true", 1)] > 2.0, ratios
    # A skipped last micro-batch (non-finite on one rank, so on all) leaves gradients the earlier
    # micro-batch accumulated under no_sync: they are averaged before the step, so the ranks agree.
    assert rank0["nan"]["nonfinite_steps"] == rank1["nan"]["nonfinite_steps"] == 1
    for name, value in rank0["nan"]["state"].items():
        assert torch.equal(value, rank1["nan"]["state"][name]), name
    # A plain LightningModule gets Lightning's whole-module DDP: one all-reduce per batch.
    assert rank0["plain"]["wrappers"] == ["module"] and rank0["plain"]["allreduces"] == 8


def test_ranks_draw_their_own_noise_and_resume_their_own_rng_states(tmp_path):
    torchrun(JOB.with_name("ddp_rng_job.py"), tmp_path, str(tmp_path / "out"))
    rank0, rank1 = (torch.load(tmp_path / "out" / f"rank{r}.pt") for r in (0, 1))
    draws0, draws1 = rank0["straight"], rank1["straight"]
    assert [(kind, b) for kind, b, _ in draws0] == [(kind, b) for kind, b, _ in draws1]
    assert {kind for kind, _, _ in draws0} == {"z", "frames"} and len(draws0) == 24
    # seed + rank: every latent differs between the ranks, and so do the D_S frame subsets.
    for (kind, b, value0), (_, _, value1) in zip(draws0, draws1, strict=True):
        if kind == "z":
            assert not torch.equal(value0, value1), (kind, b)
    frames0, frames1 = ([v for kind, _, v in d if kind == "frames"] for d in (draws0, draws1))
    assert sum(not torch.equal(a, b) for a, b in zip(frames0, frames1, strict=True)) >= len(frames0) // 2
    # The weights stay identical on both ranks (built alike, then all-reduced updates).
    for name, value in rank0["params"].items():
        assert torch.equal(value, rank1["params"][name]), name
    # Resumed after batch 4, each rank draws exactly what it drew in the uninterrupted run.
    for rank in (rank0, rank1):
        after = [d for d in rank["straight"] if d[1] >= 4]
        assert [(kind, b) for kind, b, _ in rank["resumed"]] == [(kind, b) for kind, b, _ in after]
        for (kind, b, resumed), (_, _, straight) in zip(rank["resumed"], after, strict=True):
            assert torch.equal(resumed, straight), (kind, b)
