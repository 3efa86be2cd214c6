"""A checkpoint write that fails mid-run (disk full, read-only folder) stops `vidgan fit` with a one-line
error naming the file; the checkpoints written before stay intact and loadable.

Both faults are real OS refusals applied to the running child after its first checkpoint:
- `file_size_limit`: `prlimit(RLIMIT_FSIZE)` on the child, so its next large write fails with
  EFBIG ("File too large") as a full disk fails with ENOSPC (Python ignores SIGXFSZ);
- `read_only_dir`: the checkpoint folder becomes read-only: `chmod 0o555`, or for root (whom
  permissions do not stop) the immutable attribute `chattr +i`.
~12 s per case with OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
from pathlib import Path

import pytest
from test_kill_resume import CASES, ROOT, STEP_LINE, child_env, fit_command

from ganforge.checkpoint import load_checkpoint

EVERY = CASES["vidgan"][4]  # vidgan: generator steps between checkpoints (fit_command's interval)


def make_read_only(folder: Path) -> None:
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
        pytest.skip("running as root on a file system without the immutable attribute (chattr +i)")


def undo_read_only(folder: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], check=False)
    folder.chmod(0o755)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["file_size_limit", "read_only_dir"])
def test_a_failing_checkpoint_write_stops_training_and_keeps_the_earlier_ones(
    fault: str, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    argv = fit_command("vidgan", run, tmp_path / "data")
    argv = [a if not a.startswith("--trainer.max_steps=") else "--trainer.max_steps=60" for a in argv]
    ckpt_dir, last = run / "ckpt", run / "ckpt" / "last.ckpt"
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    digest = None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = STEP_LINE.match(line.strip())
            if match and int(match.group(1)) >= EVERY and last.exists():  # the first checkpoint is complete
                digest = hashlib.sha256(last.read_bytes()).hexdigest()
                if fault == "file_size_limit":
                    resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))
                else:
                    make_read_only(ckpt_dir)
                break
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        if fault == "read_only_dir":
            undo_read_only(ckpt_dir)
    assert digest is not None, "the run ended before its first checkpoint"

    assert proc.returncode == 1, err[-2000:]
    assert "Traceback" not in err
    message = err.strip().splitlines()[-1]
    assert message.startswith(f"vidgan: error: could not write checkpoint '{ckpt_dir}/"), message
    assert "training stopped" in message
    reason = (
        "File too large"
        if fault == "file_size_limit"
        else "ermission denied"
        if os.geteuid()
        else "not permitted"
    )
    assert reason in message, message

    assert hashlib.sha256(last.read_bytes()).hexdigest() == digest  # last.ckpt is untouched
    saved = load_checkpoint(last, family="vidgan")
    assert saved["global_step"] == EVERY
    names = sorted(p.name for p in ckpt_dir.iterdir())  # epoch 1: 5-batch epochs, 2 batches a step
    assert names == [f"epoch=1-step={EVERY}.ckpt", "last.ckpt"], names  # no .tmp left
