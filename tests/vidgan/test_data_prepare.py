"""`vidgan data index | resize | ucf101` on generated videos: outputs, resuming, failures with reasons."""

from __future__ import annotations

import json
import shutil

import pytest

from vidgan.cli import main
from vidgan.data.video_index import INDEX_NAME, VideoIndex
from vidgan.data.video_reader import probe_video


@pytest.fixture
def kinetics(tmp_path, make_video):
    """Kinetics-style classes with spaces: two good videos of 24 frames at 10 fps and one broken file."""
    src = tmp_path / "kinetics"
    make_video(src / "air drumming" / "a b #1.mp4", height=64, width=96)
    make_video(src / "playing guitar" / "c.avi", height=48, width=64, codec="mjpeg")
    (src / "playing guitar" / "broken.mp4").write_text("not a video")
    return src


def test_resize_scales_the_short_side_keeps_names_and_resumes(kinetics, tmp_path, capsys):
    out = tmp_path / "small"
    argv = ["data", "resize", "--src", str(kinetics), "--out", str(out), "--size", "32", "--quiet"]
    assert main([*argv, "--workers", "2"]) == 0
    first = probe_video(out / "air drumming" / "a b #1.mp4")
    second = probe_video(out / "playing guitar" / "c.mp4")
    assert (first.height, first.width, first.num_frames) == (32, 48, 24)
    assert (second.height, second.width, second.num_frames) == (32, 42, 24)  # 64 * 32 / 48 = 42.7 -> even
    summary = json.loads((out / "resize_summary.json").read_text())
    assert (summary["written"], summary["already_done"], summary["failed"]) == (2, 0, 1)
    assert summary["failures"]["playing guitar/broken.mp4"].startswith("ffmpeg failed")
    assert summary["failed_by_reason"] == {"ffmpeg failed": 1}
    assert not list(out.rglob("*.partial"))
    assert "resize: written 2, already done 0, failed 1" in capsys.readouterr().out
    assert main([*argv, "--workers", "1"]) == 0
    assert "resize: written 0, already done 2, failed 1" in capsys.readouterr().out


def test_resize_to_a_frame_rate(kinetics, tmp_path):
    out = tmp_path / "small"
    argv = ["data", "resize", "--src", str(kinetics), "--out", str(out), "--size", "16", "--fps", "5"]
    assert main([*argv, "--workers", "1", "--quiet"]) == 0
    info = probe_video(out / "air drumming" / "a b #1.mp4")
    assert (info.height, info.fps, info.num_frames) == (16, 5.0, 12)


def test_index_command_probes_in_parallel_once_and_reports_skips(tmp_path, make_video, capsys):
    make_video(tmp_path / "v" / "00.mp4")
    for i in range(1, 16):  # 16 files: enough for a pool of two worker processes
        shutil.copy(tmp_path / "v" / "00.mp4", tmp_path / "v" / f"{i:02d}.mp4")
    (tmp_path / "v" / "bad.mp4").write_bytes(b"")
    assert main(["data", "index", str(tmp_path), "--workers", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert (
        f"index: 17 videos, 17 probed, 0 already indexed; 16 decodable, 1 skipped -> {tmp_path / INDEX_NAME}"
        in out
    )
    assert "1 x empty file (0 bytes)" in out
    entries = VideoIndex(tmp_path).load().entries
    assert {e.info.num_frames for k, e in entries.items() if k != "v/bad.mp4"} == {24}
    assert main(["data", "index", str(tmp_path), "--quiet"]) == 0
    assert "17 videos, 0 probed, 17 already indexed" in capsys.readouterr().out


def write_ucf101(root, make_video):
    """UCF-101 in miniature, with the published archive's HandStandPushups folder-case quirk."""
    src = root / "UCF-101"
    for name in (
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "HandStandPushups/v_HandStandPushups_g01_c01.avi",
    ):
        make_video(src / name, num_frames=6, codec="mjpeg")
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n")
    (lists / "trainlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 1\n")
    (lists / "testlist01.txt").write_text("HandstandPushups/v_HandStandPushups_g01_c01.avi\n")
    return src


def test_ucf101_check_reports_case_mismatches_missing_files_and_wrong_labels(tmp_path, make_video, capsys):
    src = write_ucf101(tmp_path, make_video)
    report_path = tmp_path / "check.json"
    argv = ["data", "ucf101", "--src", str(src), "--report", str(report_path), "--quiet"]
    lists = tmp_path / "ucfTrainTestlist"
    (lists / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 2\nApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi 1\n"
    )
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n3 YoYo\n")
    (src / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g02_c01.avi").write_bytes(b"")
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"vidgan: error: vidgan data ucf101: 7 problems under '{src}', see {report_path}"
    )
    report = json.loads(report_path.read_text())
    assert report["missing_class_folders"] == ["YoYo"]
    assert report["case_mismatches"] == ["classInd.txt 'HandstandPushups', folder 'HandStandPushups'"]
    assert report["labels_match_class_numbers"] is False  # YoYo has no folder
    train, test = report["splits"]["trainlist01.txt"], report["splits"]["testlist01.txt"]
    assert train["missing_files"] == ["ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi"]
    assert train["bad_labels"] == ["trainlist01.txt:1: label 2, classInd.txt says 1"]
    assert test["wrong_case_paths"] == ["HandstandPushups/v_HandStandPushups_g01_c01.avi"]
    assert report["undecodable"] == {"ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi": "empty file (0 bytes)"}


def test_ucf101_check_passes_a_consistent_tree(tmp_path, make_video, capsys):
    src = write_ucf101(tmp_path, make_video)
    (src / "HandStandPushups").rename(src / "HandstandPushups")
    report_path = tmp_path / "check.json"
    assert main(["data", "ucf101", "--src", str(src), "--report", str(report_path), "--quiet"]) == 0
    assert json.loads(report_path.read_text())["problems"] == 0
    assert "ucf101: 2 classes, 2 class folders, 2 videos (0 undecodable)" in capsys.readouterr().out
    assert (src / INDEX_NAME).is_file()  # training on this tree starts without probing
