"""Checkpoints of the single-ConvGRU generator (format 1) are refused with one line naming file and format."""

import re
from pathlib import Path

import pytest
import torch

from vidgan import FramePredictor
from vidgan.cli import lightning_main
from vidgan.module import GENERATOR_FORMAT_KEY, GeneratorFormatError

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "vidgan" / "moving_mnist_tiny.yaml"
REFUSAL = (
    "holds a vidgan generator of format 1 (a single ConvGRU at the lowest resolution); "
    "this vidgan reads format 2"
)


FIT = ["fit", "--config", str(CONFIG), "--data.train_sequences", "4", "--data.val_sequences", "2",
       "--data.batch_size", "2", "--trainer.max_steps", "2", "--trainer.logger", "false",
       "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]  # fmt: skip


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """(current, old): a `vidgan fit` checkpoint, and that file as written before the format key existed."""
    folder = tmp_path_factory.mktemp("format")
    assert lightning_main([*FIT, "--trainer.default_root_dir", str(folder)]) == 0
    current = folder / "checkpoints" / "last.ckpt"
    state = torch.load(current, weights_only=True)
    assert state.pop(GENERATOR_FORMAT_KEY) == 2
    torch.save(state, folder / "old.ckpt")
    return current, folder / "old.ckpt"


def test_current_checkpoints_load_and_old_ones_are_refused_for_inference(checkpoints):
    current, old = checkpoints
    assert FramePredictor.from_checkpoint(current).future_frames == 5
    with pytest.raises(GeneratorFormatError, match=re.escape(f"checkpoint '{old}' {REFUSAL}")):
        FramePredictor.from_checkpoint(old)


def test_resuming_an_old_checkpoint_is_a_one_line_error(checkpoints, tmp_path, capsys):
    argv = [*FIT, "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", str(checkpoints[1])]
    assert lightning_main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"vidgan: error: checkpoint '{checkpoints[1]}' {REFUSAL}"), err[-3:]
