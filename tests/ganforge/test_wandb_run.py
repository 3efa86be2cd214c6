"""W&B end to end: a tiny `fit` in offline mode is read back from its `.wandb` file and its media files.

One run, shared by all xdist workers, feeds the read-back tests; the resume test continues a copy.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import socket
from pathlib import Path

import pytest
import wandb
from filelock import FileLock
from PIL import Image
from wandb_reader import OfflineRun, offline_run_dirs
from wandb_testing import (
    BOXES,
    CAPTIONS,
    CLIPS,
    FRAME_H,
    FRAME_W,
    FRAMES,
    IMAGE_SIZE,
    IMAGES,
    decoded_frames,
    finished_runs,
    isolate,
    run_fit,
)

TRAIN_KEYS = [
    "train/d_loss",
    "train/g_loss",
    "train/d_real",
    "train/d_fake",
    "train/d_grad_norm",
    "train/g_grad_norm",
    "train/lr_d",
    "train/lr_g",
    "train/ema_decay",
    "train/g_step",
    "train/nonfinite_steps",
    "train/samples_per_sec",
]
VAL_KEYS = ["val/mse", "val/psnr"]


@pytest.fixture(scope="session")
def offline_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, OfflineRun]:
    """(run directory, offline run folder, parsed run) of one tiny 12-batch fit, made once per session.

    The xdist workers share it through a lock in their common base directory (the documented xdist
    recipe): `--dist loadgroup` cannot keep these tests on one worker with pytest 9.2 (xdist #1386).
    """
    root = tmp_path_factory.getbasetemp().parent / "wandb_fit"
    with FileLock(f"{root}.lock"):
        if not (root / "checkpoints" / "last.ckpt").is_file():
            with pytest.MonkeyPatch.context() as mp:
                isolate(mp)
                assert run_fit(root) == 0
        (run,) = finished_runs(root)
    (run_dir,) = offline_run_dirs(root)
    return root, run_dir, run


def test_history_has_every_promised_key_with_finite_values(offline_run):
    _, _, run = offline_run
    for key in [*TRAIN_KEYS, *VAL_KEYS]:
        values = run.values(key)
        assert values, f"{key} missing from the history"
        assert all(math.isfinite(v) for v in values), f"{key}: {values}"
    # Rows sit on Lightning's logging step, as W&B's own _step too: 4 train logs (every 3 of 12 batches).
    steps = [row["trainer/global_step"] for row in run.history]
    assert steps == sorted(set(steps)) and [row["_step"] for row in run.history] == steps
    assert [row["trainer/global_step"] for row in run.history if "train/d_loss" in row] == [2, 5, 8, 11]


def test_summaries_keep_min_and_max_and_axes_are_defined(offline_run):
    _, _, run = offline_run
    assert run.summary["val/mse"]["min"] == min(run.values("val/mse"))
    assert run.summary["val/psnr"]["max"] == max(run.values("val/psnr"))
    d_loss = run.values("train/d_loss")
    assert (run.summary["train/d_loss"]["min"], run.summary["train/d_loss"]["max"]) == (
        min(d_loss),
        max(d_loss),
    )
    globs = {m["glob_name"]: m["step_metric"] for m in run.metrics if "glob_name" in m}
    assert globs["train/*"] == globs["val/*"] == globs["samples/*"] == "trainer/global_step"


def test_video_and_image_media_decode_with_boxes_and_table(offline_run):
    _, run_dir, run = offline_run
    files = run_dir / "files"
    media_rows = [row for row in run.history if "samples/rollout" in row]
    assert [row["trainer/global_step"] for row in media_rows] == [5, 11]  # every 6 batches
    row = media_rows[-1]
    videos = row["samples/rollout"]["videos"]
    assert len(videos) == CLIPS
    for video in videos:
        frames = decoded_frames(files / video["path"])
        assert len(frames) == FRAMES and frames[0].shape == (FRAME_H, FRAME_W, 3)
    grid = Image.open(files / row["samples/scene"]["path"])
    assert grid.size == (
        2 * (IMAGE_SIZE + 2) + 2,
        IMAGE_SIZE + 4,
    )  # 2 images in a 2-column grid, 2 px padding
    layouts = row["samples/scene_layouts"]
    assert layouts["count"] == IMAGES and layouts["captions"] == CAPTIONS
    assert all(Image.open(files / name).size == (IMAGE_SIZE, IMAGE_SIZE) for name in layouts["filenames"])
    for overlay, expected in zip(layouts["all_boxes"], BOXES):
        boxes = json.loads((files / overlay["layout"]["path"]).read_text())
        got = [(b["box_caption"], b["position"]["minX"], b["position"]["maxY"]) for b in boxes["box_data"]]
        assert got == [(b.label, b.x, b.y + b.h) for b in expected]
    class_labels = run.config["_wandb"]["bounding_box/class_labels"]
    (labels,) = [entry["value"] for entry in class_labels.values()]
    assert sorted(labels.values()) == ["circle", "square", "triangle"]
    table = json.loads((files / row["samples/scene_table"]["path"]).read_text())
    assert table["columns"] == ["caption", "layout", "image"] and [r[0] for r in table["data"]] == CAPTIONS
    (table_artifact, *_) = [a for a in run.artifacts if a["type"] == "run_table"]
    assert sum(path.endswith(".png") for path in table_artifact["files"]) >= 2  # layout and image cells


def test_config_identity_and_local_fallback_are_recorded(offline_run):
    root, _, run = offline_run
    assert run.config["model"]["hidden"] == 16 and run.config["trainer"]["max_steps"] == 12
    assert run.config["wandb"]["media_every_n_steps"] == 6
    assert (run.project, run.group, run.job_type, run.tags) == (
        "ganforge-tests",
        "readback",
        "fit",
        ["tiny", "ring"],
    )
    assert run.run_id == (root / "wandb_run_id").read_text().strip() and run.exit_code == 0
    assert (root / "checkpoints" / "last.ckpt").is_file() and (root / "config.yaml").is_file()
    # The same media as local files, and the scalars in metrics.csv.
    samples = root / "samples"
    assert len(decoded_frames(samples / "rollout" / "step_0000011_0.mp4")) == FRAMES
    filmstrip = Image.open(samples / "rollout" / "step_0000011_filmstrip.png")  # clips x frames, 2 px pad
    assert filmstrip.size == (FRAMES * (FRAME_W + 2) + 2, CLIPS * (FRAME_H + 2) + 2)
    assert Image.open(samples / "scene" / "step_0000011.png").size == (22, 12)
    assert Image.open(samples / "scene" / "step_0000011_layouts.png").size == (2 * 130 + 2, 132)  # 8 px x16
    table = json.loads((samples / "scene" / "step_0000011_table.json").read_text())
    assert [r["caption"] for r in table] == CAPTIONS and table[1]["boxes"][0]["label"] == "triangle"
    with open(root / "csv" / "version_0" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["train/d_loss"]]
    assert [int(r["step"]) for r in rows] == [2, 5, 8, 11]


def test_resume_with_the_same_id_continues_the_step_axis(offline_run, tmp_path, monkeypatch):
    isolate(monkeypatch)
    root = tmp_path / "run"
    shutil.copytree(offline_run[0], root, symlinks=True)
    run_id = (root / "wandb_run_id").read_text().strip()
    assert run_fit(root, 18, f"--ckpt_path={root / 'checkpoints' / 'last.ckpt'}") == 0
    first, second = finished_runs(root)
    assert first.run_id == second.run_id == run_id == (root / "wandb_run_id").read_text().strip()
    first_steps, second_steps = first.values("trainer/global_step"), second.values("trainer/global_step")
    assert min(second_steps) > max(first_steps) and second.values("_step") == second_steps
    assert min(second.values("train/g_step")) > max(first.values("train/g_step"))


def test_end_of_fit_media_sit_on_the_last_batch_step(tmp_path, monkeypatch):
    # 14 batches end on step 13, no media step; a run resumed from a checkpoint of that batch (a
    # Slurm requeue's hpc_ckpt) logs from step 14 on, so the final media must not take step 14.
    isolate(monkeypatch)
    assert run_fit(tmp_path, 14) == 0
    (run,) = finished_runs(tmp_path)
    assert [row["trainer/global_step"] for row in run.history if "samples/rollout" in row] == [5, 11, 13]
    assert max(run.values("trainer/global_step")) == 13


@pytest.fixture
def fresh_wandb_setup():
    """Drop wandb's process-wide settings before and after, so environment changes are seen and undone."""
    wandb.teardown()
    yield
    wandb.teardown()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_online_without_network_falls_back_to_offline(tmp_path, monkeypatch, fresh_wandb_setup):
    isolate(monkeypatch)
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed_port()}")  # never the real service
    with pytest.warns(
        UserWarning, match=r"W&B could not start in online mode .*unreachable.*; using offline"
    ):
        assert run_fit(tmp_path, 6) == 0
    (run,) = finished_runs(tmp_path)
    assert run.values("train/d_loss") and (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_logger_false_turns_all_dashboard_output_off(tmp_path, monkeypatch):
    isolate(monkeypatch)
    assert run_fit(tmp_path, 3, "--trainer.logger=false") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "config.yaml"]
