"""`python -m vidgan.heldout_scores`: the demo's metrics.json of a checkpoint, copy-last and black frames."""

import json
from pathlib import Path

import pytest
from fixtures_eval import tiny_checkpoint

from vidgan.cli import lightning_main
from vidgan.heldout_scores import heldout_batch, main
from vidgan.metrics import frame_metrics
from vidgan.models import copy_last_frame, zero_frames

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "vidgan" / "moving_mnist_tiny.yaml"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A `vidgan fit` checkpoint of the tiny config after 2 generator steps."""
    folder = tmp_path_factory.mktemp("heldout")
    argv = ["fit", "--config", str(CONFIG), "--data.train_sequences", "4", "--data.val_sequences", "2",
            "--data.batch_size", "2", "--trainer.max_steps", "2", "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.default_root_dir", str(folder)]  # fmt: skip
    assert lightning_main(argv) == 0
    return folder / "checkpoints" / "last.ckpt"


def test_scores_the_model_and_both_trivial_baselines_on_held_out_sequences(fitted, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    assert main(["--ckpt_path", str(fitted), "--sequences", "6", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert (result["sequences"], result["context_frames"], result["future_frames"]) == (6, 5, 5)
    context, target = heldout_batch(fitted, 6)
    assert context.shape == (6, 5, 1, 64, 64) and target.shape == (6, 5, 1, 64, 64)
    for name, pred in [("copy_last", copy_last_frame(context, 5)), ("black_frames", zero_frames(context, 5))]:
        metrics = frame_metrics(pred, target)
        assert result[name] == {k: round(float(metrics[k].mean()), 4) for k in ("mse", "ssim")}
    assert set(result["model"]) == {"mse", "ssim"} and result["model"]["mse"] > 0
    printed = capsys.readouterr().out
    assert "copy_last" in printed and "black_frames" in printed and str(out) in printed


def test_the_held_out_sequences_are_the_test_draw_not_the_validation_set(fitted):
    first, _ = heldout_batch(fitted, 4)
    again, _ = heldout_batch(fitted, 4)
    assert (first == again).all()  # fixed and seeded
    from vidgan.data import MovingMNISTDataModule

    val = MovingMNISTDataModule(context_frames=5, future_frames=5, digits=1, val_sequences=4, batch_size=4)
    assert not (next(iter(val.val_dataloader()))[0] == first).all()


def test_a_checkpoint_without_generated_moving_mnist_is_a_one_line_error(tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "squares.ckpt")  # trained on plain tensors, no datamodule
    assert main(["--ckpt_path", str(ckpt), "--out", str(tmp_path / "m.json")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(
        f"vidgan.heldout_scores: error: checkpoint '{ckpt}' was not trained on generated"
    )
    assert main(["--ckpt", str(ckpt), "--sequences", "0", "--out", str(tmp_path / "m.json")]) == 1
    assert capsys.readouterr().err.strip().endswith("--sequences=0 must be >= 1")
