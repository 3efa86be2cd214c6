"""W&B pieces without a training run: run ids, modes, summaries, fallback, media, local files, reader."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import wandb
from PIL import Image
from wandb_reader import BLOCK_SIZE, offline_run_dirs, read_run
from wandb_testing import decoded_frames, finished_runs, isolate

from ganforge.logging import WandbOptions, resolve_mode, resolve_run_id
from ganforge.media import ImageMedia, LabeledBox, VideoMedia
from ganforge.media_files import check_media, write_media
from ganforge.sample_logging import take_first
from ganforge.wandb_logger import GANForgeWandbLogger, summary_ops, unreachable_reason
from ganforge.wandb_media import to_wandb, wandb_boxes


# ---------------------------------------------------------------------- run identity and mode
def test_run_id_prefers_env_then_slurm_then_saved_id_then_fresh(tmp_path):
    (tmp_path / "wandb_run_id").write_text("saved1\n")
    slurm = {"SLURM_JOB_ID": "4242"}
    array = {"SLURM_JOB_ID": "4250", "SLURM_ARRAY_JOB_ID": "4242", "SLURM_ARRAY_TASK_ID": "3"}
    assert resolve_run_id(tmp_path, True, {"WANDB_RUN_ID": "explicit", **array}, save=False) == "explicit"
    assert resolve_run_id(tmp_path, True, array, save=False) == "4242_3"
    assert resolve_run_id(tmp_path, True, slurm, save=False) == "4242"
    assert resolve_run_id(tmp_path, True, {}, save=False) == "saved1"
    fresh = resolve_run_id(tmp_path, False, {})  # not resuming: a new id, saved for the next resume
    assert fresh != "saved1" and len(fresh) == 8 and (tmp_path / "wandb_run_id").read_text() == fresh + "\n"
    assert resolve_run_id(tmp_path, True, {}) == fresh


def test_run_id_without_a_saved_file_is_fresh_and_validate_runs_do_not_save(tmp_path):
    first = resolve_run_id(tmp_path / "a", True, {}, save=False)
    assert not (tmp_path / "a").exists() and resolve_run_id(tmp_path / "a", True, {}, save=False) != first


def test_mode_env_wins_and_accepts_legacy_spellings():
    assert resolve_mode("offline", {}) == "offline"
    assert resolve_mode("offline", {"WANDB_MODE": "online"}) == "online"
    assert resolve_mode("online", {"WANDB_MODE": "dryrun"}) == "offline"
    assert resolve_mode("offline", {"WANDB_MODE": "disabled"}) == "disabled"
    with pytest.raises(ValueError, match="WANDB_MODE='cloud' must be one of"):
        resolve_mode("offline", {"WANDB_MODE": "cloud"})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mode", "cloud", "wandb.mode='cloud' must be one of"),
        ("media_every_n_steps", 0, "wandb.media_every_n_steps=0 must be >= 1"),
        ("video_format", "avi", "wandb.video_format='avi' must be 'mp4' or 'gif'"),
    ],
)
def test_options_name_the_bad_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        WandbOptions(**{field: value})


def test_summary_ops_follow_the_direction_of_each_metric():
    expected = {
        "val/mse_best_of_s": "min,last",
        "val/fvd": "min,last",
        "val/fd_local": "min,last",
        "val/fid": "min,last",
        "val/ssim_mean_of_s": "max,last",
        "val/psnr": "max,last",
        "val/soa_c": "max,last",
        "val/relation_accuracy": "max,last",
        "val/clip_score": "max,last",
        "train/d_loss": "min,max,last",
        "train/g_grad_norm": "min,max,last",
        "train/lr_g": None,
        "samples/video": None,
    }
    assert {key: summary_ops(key) for key in expected} == expected


# ---------------------------------------------------------------------- never fatal
def test_unreachable_reason_is_none_only_for_a_listening_host():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert unreachable_reason(f"http://127.0.0.1:{port}", timeout=2) is None
    assert "127.0.0.1:" in unreachable_reason(f"http://127.0.0.1:{port}", timeout=2)


def test_failing_offline_init_falls_back_to_a_disabled_run_and_logging_never_raises(tmp_path, monkeypatch):
    real_init = wandb.init

    def init(**kwargs):
        if kwargs["mode"] == "offline":
            raise OSError("disk full")
        return real_init(**kwargs)

    monkeypatch.setattr(wandb, "init", init)
    logger = GANForgeWandbLogger(save_dir=str(tmp_path), project="p", run_id="abc", mode="offline")
    with pytest.warns(
        UserWarning, match=r"could not start in offline mode \(OSError: disk full\); using disabled"
    ):
        logger.log_metrics({"train/d_loss": 1.0}, step=3)
    assert logger.mode == "disabled" and not (tmp_path / "wandb").exists()
    monkeypatch.setattr(logger._experiment, "log", lambda *a, **k: 1 / 0)
    with pytest.warns(UserWarning, match="W&B logging failed .*ZeroDivisionError"):
        logger.log_metrics({"train/d_loss": 2.0}, step=4)
    logger.finalize("success")


def test_slurm_requeue_finishes_the_run_cleanly_and_drops_later_logs(tmp_path, monkeypatch):
    isolate(monkeypatch)
    logger = GANForgeWandbLogger(save_dir=str(tmp_path), project="p", run_id="requeue1")
    logger.log_metrics({"train/d_loss": 1.0}, step=5)
    logger.finalize("finished")  # what Lightning calls on the requeue signal, before the hpc checkpoint
    logger.log_metrics({"train/d_loss": 2.0}, step=6)  # the requeued job logs this step again
    wandb.teardown()  # waits until wandb-core has flushed the file
    (run,) = finished_runs(tmp_path)
    assert run.exit_code == 0 and run.values("train/d_loss") == [1.0] and logger.mode == "offline"


# ---------------------------------------------------------------------- media
BOXES = [[LabeledBox("circle", 0.25, 0.5, 0.5, 0.25)], [LabeledBox("square", 0, 0, 1, 1)]]


def grey_clips(n: int = 2, t: int = 3, h: int = 7, w: int = 9) -> torch.Tensor:
    """uint8 (n, t, 1, h, w) clips whose frames are distinct flat greys (odd sides on purpose)."""
    level = 50 * torch.arange(1, t + 1)[None, :] + 20 * torch.arange(n)[:, None]
    return level[:, :, None, None, None].expand(n, t, 1, h, w).to(torch.uint8)


def test_to_wandb_makes_videos_grid_box_overlays_and_table():
    images = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    media = {
        "video": VideoMedia(grey_clips(), fps=5, captions=["a", "b"]),
        "image": ImageMedia(images, captions=["c0", "c1"], boxes=BOXES),
    }
    label_ids = {"square": 0}  # ids stay stable across calls: square keeps 0, circle gets 1
    logged = to_wandb(media, "gif", label_ids)
    assert sorted(logged) == [
        "samples/image",
        "samples/image_layouts",
        "samples/image_table",
        "samples/video",
    ]
    assert len(logged["samples/video"]) == 2 and all(
        isinstance(v, wandb.Video) for v in logged["samples/video"]
    )
    assert logged["samples/image"].image.size == (2 * 8 + 2, 6 + 4)
    assert all(isinstance(image, wandb.Image) for image in logged["samples/image_layouts"])
    assert label_ids == {"square": 0, "circle": 1}
    table = logged["samples/image_table"]
    assert table.columns == ["caption", "layout", "image"] and [row[0] for row in table.data] == ["c0", "c1"]


def test_wandb_boxes_are_relative_corners_with_stable_class_ids():
    label_ids = {"square": 0}
    boxes = wandb_boxes(BOXES[0], label_ids)["layout"]
    position = {"minX": 0.25, "maxX": 0.75, "minY": 0.5, "maxY": 0.75}
    assert boxes["box_data"] == [{"position": position, "class_id": 1, "box_caption": "circle"}]
    assert boxes["class_labels"] == {0: "square", 1: "circle"}
    assert wandb_boxes(BOXES[1], label_ids)["layout"]["box_data"][0]["class_id"] == 0


def test_check_media_names_the_key_with_mismatched_captions():
    with pytest.raises(ValueError, match=r"sample\(\)\['image'\].captions has 1 entries for 2 items"):
        check_media({"image": ImageMedia(torch.zeros(2, 3, 4, 4), captions=["only one"])})
    with pytest.raises(ValueError, match=r"sample\(\)\['x'\] is Tensor"):
        check_media({"x": torch.zeros(1)})


def test_local_files_gif_and_odd_sized_mp4_keep_every_frame(tmp_path):
    media = {"video": VideoMedia(grey_clips(n=1, t=4), fps=4)}
    gif, _ = write_media(media, tmp_path, step=7, video_format="gif")
    assert gif == tmp_path / "video" / "step_0000007_0.gif"
    frames = Image.open(gif)
    assert frames.n_frames == 4 and frames.size == (9, 7)
    mp4, strip = write_media(media, tmp_path, step=8, video_format="mp4")
    assert strip.name == "step_0000008_filmstrip.png" and Image.open(strip).size == (4 * 11 + 2, 7 + 4)
    decoded = decoded_frames(mp4)
    assert len(decoded) == 4 and decoded[0].shape == (8, 10, 3)  # padded to even sides for yuv420p
    assert [int(round(f.mean())) for f in decoded] == pytest.approx([50, 100, 150, 200], abs=3)


def test_take_first_cuts_nested_batches():
    batch = {
        "x": torch.arange(10).view(5, 2),
        "captions": ["a", "b", "c", "d", "e"],
        "pair": (torch.ones(5), 3),
    }
    cut = take_first(batch, 2)
    assert cut["x"].tolist() == [[0, 1], [2, 3]] and cut["captions"] == ["a", "b"]
    assert cut["pair"][0].shape == (2,) and cut["pair"][1] == 3


# ---------------------------------------------------------------------- reader
def test_reader_reassembles_records_across_blocks_and_matches_wandb_leet(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    blob = "x" * (3 * BLOCK_SIZE)  # one config record spanning four 32 KiB blocks
    run = wandb.init(project="p", id="reader1", dir=tmp_path, mode="offline", config={"blob": blob, "n": 3})
    for step in range(5):
        run.log({"train/a": step / 2, "nested": {"b": step}}, step=step * 10)
    run.finish()
    wandb.teardown()  # waits until wandb-core has flushed the file
    (run_dir,) = offline_run_dirs(tmp_path)
    back = read_run(run_dir)
    assert back.run_id == "reader1" and back.config["blob"] == blob and back.config["n"] == 3
    assert back.values("train/a") == [0, 0.5, 1, 1.5, 2] and back.values("_step") == [0, 10, 20, 30, 40]
    assert back.exit_code == 0 and (run_dir / "run-reader1.wandb").stat().st_size > 3 * BLOCK_SIZE
    wandb_cli = shutil.which("wandb", path=str(Path(sys.executable).parent))
    leet = subprocess.run(
        [wandb_cli, "leet", "inspect", "--json", str(run_dir)], capture_output=True, text=True
    )
    records = [json.loads(line) for line in leet.stdout.splitlines()]
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    assert [row["train/a"] for row in history] == back.values("train/a")
    assert [row["nested.b"] for row in history] == [value["b"] for value in back.values("nested")]


def test_reader_rejects_a_file_that_is_not_a_wandb_log(tmp_path):
    (tmp_path / "run-x.wandb").write_bytes(b"PK\x03\x04 not a wandb file")
    with pytest.raises(ValueError, match="not a W&B transaction log"):
        read_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="no run-\\*.wandb file"):
        read_run(tmp_path / "missing")


def test_png_grid_of_the_local_writer_has_the_grid_size(tmp_path):
    images = torch.zeros(5, 1, 4, 6)  # grey images are written as RGB
    paths = write_media({"img": ImageMedia(images)}, tmp_path, step=1)
    assert [p.name for p in paths] == ["step_0000001.png"]
    grid = np.asarray(Image.open(paths[0]))
    assert grid.shape == (2 * (4 + 2) + 2, 3 * (6 + 2) + 2, 3)  # 5 images -> 3 columns x 2 rows
