"""vidgan through the W&B logging: a tiny DVD-GAN-FP `fit` read back from its offline run.

Checks what the vidgan dashboard promises: train/ and val/ scalars (MSE, MAE, SSIM, PSNR with min or
max summaries) and `samples/video` clips of context | prediction | truth that decode to T frames.
"""

from __future__ import annotations

import math
from pathlib import Path

from wandb_reader import offline_run_dirs
from wandb_testing import decoded_frames, finished_runs, isolate

from vidgan.cli import lightning_main

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "vidgan" / "moving_mnist.yaml"
CONTEXT, FUTURE, SIZE, CLIPS = 2, 2, 32, 4


def test_tiny_vidgan_fit_reads_back_with_val_metrics_and_comparison_videos(tmp_path, monkeypatch):
    isolate(monkeypatch)
    argv = [
        "fit",
        f"--config={CONFIG}",
        "--trainer.max_steps=4",  # generator steps: 8 batches (2 D updates per G update)
        "--trainer.val_check_interval=2",  # generator steps: every 4 batches
        "--trainer.limit_val_batches=1",
        "--trainer.log_every_n_steps=2",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false",
        "--model.init_args.g_widths=[16, 8]",
        "--model.init_args.d_widths=[8, 16]",
        "--model.init_args.spatial_frames=2",
        f"--data.context_frames={CONTEXT}",
        f"--data.future_frames={FUTURE}",
        f"--data.image_size={SIZE}",
        "--data.batch_size=4",
        "--data.train_sequences=16",
        "--data.val_sequences=4",
        "--wandb.media_every_n_steps=2",  # generator steps: after batches 4 and 8
    ]
    assert lightning_main(argv) == 0
    (run,) = finished_runs(tmp_path)
    assert run.project == "vidgan" and run.exit_code == 0
    for key in ["train/d_loss", "train/g_loss", "train/d_grad_norm", "train/lr_g", "val/mse", "val/ssim"]:
        assert run.values(key) and all(math.isfinite(v) for v in run.values(key)), key
    assert run.summary["val/mse"]["min"] == min(run.values("val/mse"))
    assert run.summary["val/psnr"]["max"] == max(run.values("val/psnr"))
    (run_dir,) = offline_run_dirs(tmp_path)
    media = [row for row in run.history if "samples/video" in row]
    assert [row["trainer/global_step"] for row in media] == [3, 7]
    for video in media[-1]["samples/video"]["videos"]:
        # context | prediction | truth side by side: 3 panels wide, context + future frames long.
        frames = decoded_frames(run_dir / "files" / video["path"])
        assert len(frames) == CONTEXT + FUTURE and frames[0].shape == (SIZE, 3 * SIZE, 3)
    assert len(media[-1]["samples/video"]["videos"]) == CLIPS
    assert len(decoded_frames(tmp_path / "samples" / "video" / "step_0000007_0.mp4")) == CONTEXT + FUTURE
