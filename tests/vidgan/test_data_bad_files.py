"""The bad-file matrix: every broken video is skipped at index time with its reason, or is a clear error."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from vidgan.data import VideoFolderDataset


def truncate(source: Path, target: Path, fraction: float = 0.6) -> None:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])


@pytest.fixture(scope="module")
def mixed_root(tmp_path_factory, make_video) -> Path:
    """root/good/ok.mp4 (24 frames) beside one file of each broken kind in root/bad/."""
    root = tmp_path_factory.mktemp("mixed")
    make_video(root / "good" / "ok.mp4")
    bad = root / "bad"
    bad.mkdir()
    (bad / "zero.mp4").write_bytes(b"")
    make_video(root / "src" / "moov_last.mp4")  # ffmpeg's default: the index (moov) at the end
    truncate(root / "src" / "moov_last.mp4", bad / "truncated.mp4")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(root / "src" / "moov_last.mp4"), "-c", "copy"]
        + ["-movflags", "+faststart", str(root / "src" / "moov_first.mp4")],
        check=True,
        timeout=60,
    )
    truncate(root / "src" / "moov_first.mp4", bad / "truncated_faststart.mp4")
    (bad / "notes.mp4").write_text("these are meeting notes, not a video\n")
    make_video(bad / "short.mp4", num_frames=5)
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:a",
            "aac",
            str(bad / "audio.mp4"),
        ],
        check=True,
        timeout=60,
    )
    for path in (root / "src").iterdir():
        path.unlink()
    (root / "src").rmdir()
    return root


@pytest.fixture(scope="module")
def mixed(mixed_root) -> VideoFolderDataset:
    return VideoFolderDataset(mixed_root, context_frames=4, future_frames=4, image_size=16)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("zero.mp4", "empty file (0 bytes)"),
        ("truncated.mp4", "cannot open"),  # the moov index was cut off: no container to read
        ("truncated_faststart.mp4", "truncated or corrupt: frame 23 of 24 does not decode"),
        ("notes.mp4", "cannot open"),
        ("audio.mp4", "video stream"),
        ("short.mp4", "too short: 5 frames, a clip needs 8 (T=8, frame_stride=1)"),
    ],
)
def test_each_bad_file_is_skipped_with_its_reason(mixed, name, reason):
    skipped = {Path(s.path).name: s.reason for s in mixed.skipped}
    assert reason in skipped[name]
    assert [e.path.name for e in mixed.entries] == ["ok.mp4"]


def test_each_bad_file_is_logged_once_and_counted(mixed_root, caplog):
    with caplog.at_level(logging.WARNING, logger="vidgan.data"):
        dataset = VideoFolderDataset(mixed_root, 4, 4, image_size=16)
    messages = [r.getMessage() for r in caplog.records]
    for skipped in dataset.skipped:
        assert sum(skipped.path in m for m in messages) == 1
    assert len(dataset.skipped) == 6 and len(dataset) == 1
    assert f"skipped 6 of 7 videos under '{mixed_root}'" in messages[-1]


def test_a_loader_over_a_folder_with_bad_files_runs_whole_epochs(mixed_root):
    dataset = VideoFolderDataset(mixed_root, 4, 4, image_size=16)
    loader = DataLoader(dataset, batch_size=1, num_workers=1, generator=torch.Generator().manual_seed(0))
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == 1 and batches[0][0].shape == (1, 4, 3, 16, 16)


def test_a_file_that_breaks_after_indexing_is_replaced_not_fatal(tmp_path, make_video):
    make_video(tmp_path / "a" / "one.mp4")
    make_video(tmp_path / "a" / "two.mp4")
    dataset = VideoFolderDataset(tmp_path, 2, 2, image_size=16, temporal_start="centre")
    (tmp_path / "a" / "one.mp4").write_bytes(b"overwritten while training")
    context, target = dataset[0]  # one.mp4 no longer decodes: two.mp4's clip is served instead
    torch.testing.assert_close(torch.cat([context, target]), torch.cat(dataset[1]))
    assert [(Path(s.path).name, s.reason.split(":")[0]) for s in dataset.skipped] == [
        ("one.mp4", "failed while training")
    ]


def test_a_folder_of_only_bad_files_is_a_clear_error_naming_the_root(mixed_root):
    with pytest.raises(ValueError, match=rf"no usable videos under '{mixed_root / 'bad'}': all 6 skipped"):
        VideoFolderDataset(mixed_root / "bad", 4, 4)


def test_a_folder_without_videos_is_a_clear_error_naming_the_root(tmp_path):
    (tmp_path / "notes.txt").write_text("no videos here")
    with pytest.raises(ValueError, match=rf"no video files \(.mp4, .avi, .mkv, .webm\) under '{tmp_path}'"):
        VideoFolderDataset(tmp_path, 4, 4)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        VideoFolderDataset(tmp_path / "nowhere", 4, 4)


def test_a_split_file_naming_a_missing_video_skips_it(mixed_root, tmp_path):
    split = tmp_path / "testlist01.txt"
    split.write_text("good/ok.mp4\ngood/gone.mp4\n")
    dataset = VideoFolderDataset(mixed_root, 2, 2, image_size=16, split_file=split)
    assert len(dataset) == 1
    assert [(Path(s.path).name, s.reason) for s in dataset.skipped] == [
        ("gone.mp4", "missing: listed in the split file but not found")
    ]
