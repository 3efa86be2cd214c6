"""SIGTERM and Ctrl-C stop a fit at the next batch end with `last.ckpt` saved; the console stays clean.

`vidgan fit` runs as a subprocess with a `max_steps` it never reaches; once it has announced a few
generator steps (tests/fault/step_announcer.py) the test sends the signal. The fit must exit with
128 + the signal number, without a requeue request, and leave a `last.ckpt` at the step it stopped
at. The same run's output must not hold Lightning's noise lines (ganforge.console), while a real
warning (the logging interval longer than an epoch) still prints.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ganforge.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
STEP_LINE = re.compile(r"^step (\d+)$")
NOISE = (
    "litlogger",
    "`srun` command is available",
    "LeafSpec",
    "has `__len__` defined",
    "module(s) in eval mode",
    "FLOPs",
    "Epoch 0/-",
    "ModelSummary",
)


def stopped_fit(tmp_path: Path, signum: int) -> tuple[int, list[int], str, Path]:
    requeue = tmp_path / "requeue"
    argv = [
        str(Path(sys.executable).parent / "vidgan"),
        "fit",
        "--config",
        str(ROOT / "configs/vidgan/moving_mnist_tiny.yaml"),
        "--data.train_sequences=40",
        "--data.val_sequences=8",
        "--data.batch_size=4",
        "--trainer.limit_val_batches=1",
        "--trainer.max_steps=100000",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.callbacks+=step_announcer.StepAnnouncer",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parent), WANDB_MODE="offline")
    env["GANFORGE_REQUEUE_FILE"] = str(requeue)  # as under slurm/train.sbatch: SIGUSR1 would requeue
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    steps: list[int] = []
    assert proc.stdout is not None
    output = []
    for line in proc.stdout:
        output.append(line)
        match = STEP_LINE.match(line.strip())
        if match:
            steps.append(int(match.group(1)))
            if len(steps) == 3:
                proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    assert not requeue.exists(), "a stop signal must not request a requeue"
    return proc.returncode, steps, "".join(output) + err, tmp_path / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_saves_last_checkpoint_and_exits(tmp_path: Path, signum: int) -> None:
    rc, steps, output, last = stopped_fit(tmp_path, signum)
    assert rc == 128 + signum, output[-2000:]
    assert f"stopping on {signal.Signals(signum).name}" in output
    ckpt = load_checkpoint(last, family="vidgan")
    assert ckpt["global_step"] == steps[-1] and steps[-1] >= 3  # the step it stopped at, not an older save
    if signum == signal.SIGTERM:
        noise = [line for line in output.splitlines() if any(n in line for n in NOISE)]
        assert not noise, noise
        assert "is smaller than the logging interval" in output  # real warnings still print
