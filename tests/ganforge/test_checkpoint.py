"""Checkpoint safety: atomic writes survive SIGKILL mid-write; weights_only loading refuses code."""

import os
import pickle
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from ganforge.checkpoint import atomic_torch_save, load_checkpoint
from ganforge.errors import CheckpointError, NotGANForgeCheckpointError, WrongFamilyError

HEADER = {"format_version": 1, "family": "vidgan"}


def test_sigkill_during_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "last.ckpt"
    child = textwrap.dedent(
        f"""
        import sys, time, torch
        from ganforge.checkpoint import atomic_torch_save

        atomic_torch_save({{"ganforge": {HEADER!r}, "step": 1}}, {str(path)!r})

        def slow_save(obj, f):  # half a checkpoint, then hang as a slow disk would
            f.write(b"PK" * 4096)
            f.flush()
            print("writing", flush=True)
            time.sleep(60)

        torch.save = slow_save
        atomic_torch_save({{"ganforge": {HEADER!r}, "step": 2}}, {str(path)!r})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert load_checkpoint(path, family="vidgan")["step"] == 1
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "last.ckpt"]
    assert all(name.startswith(".last.ckpt.") and name.endswith(".tmp") for name in leftovers), leftovers


class RunsCode:
    """Unpickling this calls os.system: the classic malicious checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"ganforge": HEADER, "state_dict": {}, "payload": RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match=r"refused by the safe loader.*(system|posix)"):
        load_checkpoint(path, family="vidgan")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        ({"state_dict": {}}, NotGANForgeCheckpointError, "not a ganforge checkpoint"),
        (
            {"ganforge": {"format_version": 1, "family": "t2i-image"}},
            WrongFamilyError,
            "its family is 't2i-image'",
        ),
        (
            {"ganforge": {"format_version": 99, "family": "vidgan"}},
            CheckpointError,
            "format_version 99, newer",
        ),
    ],
)
def test_wrong_checkpoints_name_the_problem(tmp_path, content, error, message):
    path = tmp_path / "x.ckpt"
    atomic_torch_save(content, path)
    with pytest.raises(error, match=message):
        load_checkpoint(path, family="vidgan")


def test_unreadable_paths(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.ckpt")
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_checkpoint(text)
    good = tmp_path / "good.ckpt"
    atomic_torch_save({"ganforge": HEADER, "w": torch.zeros(1000)}, good)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_checkpoint(truncated)


def test_pickle_module_is_not_used_for_plain_data(tmp_path):
    # weights_only keeps plain containers, numbers and strings: headers round-trip
    path = tmp_path / "h.ckpt"
    atomic_torch_save({"ganforge": HEADER, "hparams": {"widths": [16, 32], "name": "x", "p": None}}, path)
    assert load_checkpoint(path)["hparams"] == {"widths": [16, 32], "name": "x", "p": None}
    assert pickle.HIGHEST_PROTOCOL >= 2
