"""Kill -9 and resume: a tiny `vidgan fit` / `t2i fit` killed mid-run and started again with the same
command (`--ckpt_path auto`) ends bitwise equal to the same run left alone.

Each case runs the CLI three times as subprocesses: N generator steps straight; the same command
SIGKILLed at a random step after the first checkpoint (checkpoints every K steps); the same command
again, which finds the killed run's last.ckpt and resumes from it. On CPU with one thread every
operation is deterministic, and the checkpoint holds everything the rest of the run depends on:
weights, EMA, optimiser moments, the torch/numpy/python RNG states and the data loader's position
inside the epoch (`ganforge.resumable`). So the final G, D and EMA weights and the optimiser states
must be equal bit for bit (`torch.equal`, no tolerance). The resumed run repeats the steps done
after the last checkpoint; the test counts them (in generator steps) and checks that they are at
most one checkpoint interval. Set GANFORGE_FAULT_SEED to replay a kill step.

Epochs are 5 (vidgan) and 3 (t2i) batches long, so the resumed run starts mid-epoch and crosses
epoch boundaries. ~25-40 s per case with OMP_NUM_THREADS=1 (three CLI start-ups dominate).
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from ganforge.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
QUIET = [
    "--trainer.logger=false",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]
STEP_LINE = re.compile(r"^step (\d+)$")

# family -> (command, config, overrides, max_steps N, checkpoint interval K, family in the header)
CASES = {
    "vidgan": (
        "vidgan",
        "configs/vidgan/moving_mnist_tiny.yaml",
        # 20 sequences / batch 4 = 5 batches per epoch; one generator step per 2 batches
        ["--data.train_sequences=20", "--data.batch_size=4", "--trainer.val_check_interval=5"],
        10,
        3,
        "vidgan",
    ),
    "t2i": (
        "t2i",
        "configs/t2i/shapes_image_tiny.yaml",
        # 12 images / batch 4 = 3 batches per epoch; one generator step per batch
        [
            "--model.init_args.clip_path=null",
            "--model.init_args.text_width=64",
            "--model.init_args.text_layers=1",
            "--data.init_args.batch_size=4",
            "--data.init_args.shapes.train=12",
            "--data.init_args.shapes.val=4",
        ],
        8,
        2,
        "t2i-image",
    ),
}


def fit_command(family: str, root: Path, data: Path) -> list[str]:
    command, config, overrides, max_steps, every, _ = CASES[family]
    data_args = [f"--data.init_args.data_dir={data}"] if family == "t2i" else []  # vidgan generates
    return [
        str(BIN / command),
        "fit",
        "--config",
        str(ROOT / config),
        *overrides,
        *data_args,
        *QUIET,
        f"--trainer.max_steps={max_steps}",
        f"--trainer.default_root_dir={root}",
        "--trainer.callbacks+=ganforge.run_checkpoint.RunCheckpoint",
        f"--trainer.callbacks.dirpath={root / 'ckpt'}",
        f"--trainer.callbacks.every_n_train_steps={every}",
        "--trainer.callbacks.keep_last=-1",
        "--trainer.callbacks+=step_announcer.StepAnnouncer",
        "--ckpt_path=auto",  # fresh when the run folder has no checkpoint, else resume
    ]


def child_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parent))
    env.pop("GANFORGE_DEBUG", None)
    return env


def run_fit(argv: list[str], kill_at: int | None = None) -> tuple[int, list[int], str]:
    """Run `argv`; SIGKILL it once it has announced step `kill_at`. Returns (rc, steps announced, stderr)."""
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    steps: list[int] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        match = STEP_LINE.match(line.strip())
        if match:
            steps.append(int(match.group(1)))
            if kill_at is not None and steps[-1] >= kill_at:
                os.kill(proc.pid, signal.SIGKILL)
                break
    _, err = proc.communicate(timeout=300)
    return proc.returncode, steps, err


def assert_same_tree(a: Any, b: Any, where: str) -> None:
    """Nested dicts / lists of tensors and numbers are equal exactly (tensors by `torch.equal`)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys differ"
        for key in a:
            assert_same_tree(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(CASES))
def test_sigkill_and_resume_ends_bitwise_equal_to_the_straight_run(family: str, tmp_path: Path) -> None:
    _, _, _, max_steps, every, header_family = CASES[family]
    data = tmp_path / "data"  # t2i renders its shapes here on first use; both runs share it
    straight, killed = tmp_path / "straight", tmp_path / "killed"

    rc, steps, err = run_fit(fit_command(family, straight, data))
    assert rc == 0, err[-2000:]
    assert steps[-1] == max_steps

    seed = int(os.environ.get("GANFORGE_FAULT_SEED", time.time_ns() % 2**32))
    # Not in the last interval: the child must still be training when the kill lands.
    candidates = [s for s in steps if every < s <= max_steps - every and s % every != 0]
    kill_at = random.Random(seed).choice(candidates)
    rc, done, err = run_fit(fit_command(family, killed, data), kill_at=kill_at)
    assert rc == -signal.SIGKILL, f"seed {seed}: the run was not killed ({rc}): {err[-2000:]}"
    saved = load_checkpoint(killed / "ckpt" / "last.ckpt", family=header_family)
    resumed_from = saved["global_step"]
    assert every <= resumed_from <= done[-1], f"seed {seed}"

    rc, rerun, err = run_fit(fit_command(family, killed, data))  # the same command again
    assert rc == 0, err[-2000:]
    assert rerun[0] > resumed_from and rerun[-1] == max_steps
    redone = done[-1] - resumed_from  # generator steps finished before the kill and done again
    assert [s for s in rerun if s <= done[-1]] == [s for s in done if s > resumed_from]
    assert 0 <= redone <= every, f"seed {seed}: redid {redone} steps after the kill at step {done[-1]}"

    a = load_checkpoint(straight / "ckpt" / "last.ckpt", family=header_family)
    b = load_checkpoint(killed / "ckpt" / "last.ckpt", family=header_family)
    assert a["global_step"] == b["global_step"] == max_steps
    prefixes = {key.split(".")[0] for key in a["state_dict"]}
    assert {"generator", "discriminator", "ema"} <= prefixes
    assert_same_tree(a["state_dict"], b["state_dict"], "state_dict")  # G, D and EMA weights
    assert_same_tree(a["optimizer_states"], b["optimizer_states"], "optimizer_states")
    for key in ("batches_seen", "g_step", "nonfinite_steps", "rng_states"):
        assert_same_tree(a["ganforge"][key], b["ganforge"][key], f"ganforge.{key}")
    loader = b["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert_same_tree(a["loops"]["fit_loop"]["state_dict"]["combined_loader"][0], loader, "loader position")
    print(f"{family}: killed after step {done[-1]} (seed {seed}), resumed at {resumed_from}, redid {redone}")
