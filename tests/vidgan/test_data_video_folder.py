"""Real video files through opencv and decord: accurate seeking, clip sampling, layouts, the fallback."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from vidgan.data import VideoFolderDataset
from vidgan.data import video_reader as reader_module
from vidgan.data.video_folder import centre_square
from vidgan.data.video_reader import VideoDecodeError, probe_video, read_frames, resolve_backends


def identify_frames(decoded: np.ndarray, reference: np.ndarray) -> list[int]:
    """For each decoded frame (T, H, W, 3), the index of the closest reference frame (N, H, W, 3)."""
    error = np.abs(decoded[:, None].astype(np.float32) - reference[None].astype(np.float32)).mean(
        axis=(2, 3, 4)
    )
    return error.argmin(axis=1).tolist()


def as_uint8(clip: torch.Tensor) -> np.ndarray:
    """(T, C, H, W) float in [0, 1] -> (T, H, W, C) uint8."""
    return (clip * 255).round().byte().permute(0, 2, 3, 1).numpy()


# Codec tolerance on 0..255: H.264 4:2:0 and MJPEG blur the square's edges (mean error ~0.2-0.4),
# while showing the neighbouring frame instead costs about 1.5.
MEAN_TOLERANCE = 0.8


@pytest.mark.parametrize("container", ["mp4", "mkv", "avi"])
@pytest.mark.parametrize("backend", ["decord", "opencv"])
def test_seeking_decodes_exactly_the_requested_frames(video_files, reference_frames, container, backend):
    info = probe_video(video_files[container], backend)
    assert (info.num_frames, info.height, info.width, info.backend) == (24, 48, 64, backend)
    # Starts between keyframes (interval 4) and after B-frames, with a stride.
    for indices in ([13, 15, 17, 19], [5, 6, 7], [22, 23], [0, 9, 18]):
        frames = read_frames(video_files[container], indices, backend)
        assert frames.shape == (len(indices), 48, 64, 3) and frames.dtype == np.uint8
        assert identify_frames(frames, reference_frames) == indices
        error = np.abs(frames.astype(np.float32) - reference_frames[indices]).mean()
        assert error < MEAN_TOLERANCE
        assert frames[..., 0].max() > 200 and frames[..., 2].max() < 100  # RGB order: the square is red


def test_dataset_clips_match_the_known_content(class_root, reference_frames):
    dataset = VideoFolderDataset(
        class_root, context_frames=3, future_frames=2, image_size=32, frame_stride=2, temporal_start="centre"
    )
    assert dataset.classes == ["blue", "red"] and dataset.skipped == []
    assert [e.path.name for e in dataset.entries] == ["c.mp4", "a.mp4", "b.avi"]
    context, target = dataset[1]  # red/a.mp4: 24 frames, a clip spans 9, centre start (24 - 9) // 2 = 7
    assert context.shape == (3, 3, 32, 32) and target.shape == (2, 3, 32, 32)
    assert context.dtype == torch.float32 and 0 <= context.min() and context.max() <= 1
    indices = [7, 9, 11, 13, 15]
    reference = torch.from_numpy(reference_frames).permute(0, 3, 1, 2).float() / 255
    expected = centre_square(reference[indices], 32)  # crop the centre 48x48, resize to 32x32
    torch.testing.assert_close(torch.cat([context, target]), expected, atol=0.2, rtol=0)
    assert (torch.cat([context, target]) - expected).abs().mean() < MEAN_TOLERANCE / 255
    assert (
        identify_frames(as_uint8(torch.cat([context, target])), as_uint8(centre_square(reference, 32)))
        == indices
    )


def test_random_starts_vary_and_stay_inside_the_video(class_root):
    dataset = VideoFolderDataset(class_root, context_frames=4, future_frames=4, frame_stride=2, seed=3)
    starts = {int(dataset.clip_indices(24, draw)[0]) for draw in range(200)}
    assert starts == set(range(0, 24 - 15 + 1))  # a clip spans (8 - 1) * 2 + 1 = 15 frames
    same = [VideoFolderDataset(class_root, 4, 4, frame_stride=2, seed=s) for s in (3, 3, 4)]
    draws = [[int(d.clip_indices(24, draw)[0]) for draw in range(10)] for d in same]
    assert draws[0] == draws[1] and draws[0] != draws[2]


def test_labels_come_from_sorted_class_folders(class_root):
    dataset = VideoFolderDataset(class_root, 2, 2, image_size=16, channels=1, return_labels=True)
    labels = [dataset[i][2] for i in range(len(dataset))]
    assert labels == [0, 1, 1]  # blue/c.mp4, red/a.mp4, red/b.avi
    context, target, _ = dataset[0]
    assert context.shape == (2, 1, 16, 16) and target.shape == (2, 1, 16, 16)


def test_split_list_files_select_videos_ucf_style(class_root, tmp_path):
    split = tmp_path / "trainlist01.txt"
    split.write_text("# UCF-101 style\nred/b.avi 2\n\nblue/c.mp4 1\n")
    dataset = VideoFolderDataset(class_root, 2, 2, image_size=16, split_file=split, return_labels=True)
    assert [(e.path.name, e.label) for e in dataset.entries] == [("b.avi", 1), ("c.mp4", 0)]
    with pytest.raises(FileNotFoundError, match="nolist.txt"):
        VideoFolderDataset(class_root, 2, 2, split_file=tmp_path / "nolist.txt")


def test_auto_tries_opencv_first_then_decord(class_root):
    assert resolve_backends("auto") == ("opencv", "decord")
    dataset = VideoFolderDataset(class_root, 2, 2, image_size=16)
    assert {e.info.backend for e in dataset.entries} == {"opencv"}


def test_opencv_alone_when_decord_is_missing(class_root, reference_frames, monkeypatch):
    monkeypatch.setitem(sys.modules, "decord", None)  # `import decord` now raises ImportError
    assert resolve_backends("auto") == ("opencv",)
    dataset = VideoFolderDataset(class_root, 2, 2, image_size=64, temporal_start="centre")
    assert {e.info.backend for e in dataset.entries} == {"opencv"}
    context, _ = dataset[1]  # red/a.mp4, centre start 10; 64x48 is cropped to 48x48 and resized to 64
    reference = torch.from_numpy(reference_frames).permute(0, 3, 1, 2).float() / 255
    assert identify_frames(as_uint8(context), as_uint8(centre_square(reference, 64))) == [10, 11]
    with pytest.raises(ValueError, match="decord is not installed"):
        VideoFolderDataset(class_root, 2, 2, backend="decord")


def test_auto_reads_a_file_decord_cannot(tmp_path, make_video):
    # decord 0.6.0 cannot copy 48-pixel-wide frames out (row padding); opencv reads them.
    frames = make_video(tmp_path / "v" / "narrow.mp4", num_frames=12, height=32, width=48)
    with pytest.raises(VideoDecodeError):
        probe_video(tmp_path / "v" / "narrow.mp4", "decord")
    dataset = VideoFolderDataset(tmp_path, 2, 2, image_size=32, temporal_start="centre")
    assert dataset.entries[0].info.backend == "opencv" and dataset.skipped == []
    context, target = dataset[0]  # centre start (12 - 4) // 2 = 4: the 32x32 centre of frames 4..7
    expected = torch.from_numpy(frames[4:8, :, 8:40]).permute(0, 3, 1, 2).float() / 255
    assert (torch.cat([context, target]) - expected).abs().mean() < MEAN_TOLERANCE / 255


def fail(*args):
    raise VideoDecodeError("decoder crashed")


def test_decord_probes_a_file_opencv_cannot(class_root, tmp_path, monkeypatch):
    monkeypatch.setitem(reader_module._PROBE, "opencv", fail)
    dataset = VideoFolderDataset(class_root, 2, 2, image_size=16, index_path=tmp_path / "index.json")
    assert {e.info.backend for e in dataset.entries} == {"decord"} and dataset.skipped == []
    monkeypatch.setitem(reader_module._PROBE, "decord", fail)
    with pytest.raises(ValueError, match="c.mp4': opencv: decoder crashed; decord: decoder crashed"):
        VideoFolderDataset(class_root, 2, 2, image_size=16, index_path=tmp_path / "none.json")


@pytest.mark.parametrize("probed_by", ["opencv", "decord"])
def test_the_other_backend_takes_over_when_one_fails_while_training(
    class_root, tmp_path, monkeypatch, probed_by
):
    with monkeypatch.context() as patch:
        if probed_by == "decord":
            patch.setitem(reader_module._PROBE, "opencv", fail)  # the index records decord
        dataset = VideoFolderDataset(
            class_root, 2, 2, image_size=16, temporal_start="centre", index_path=tmp_path / "index.json"
        )
    alone = VideoFolderDataset(
        class_root, 2, 2, image_size=16, backend=probed_by, index_path=tmp_path / "1.json"
    )
    expected = dataset[1]
    assert dataset.entries[1].info.backend == probed_by
    monkeypatch.setitem(reader_module._READ, probed_by, fail)  # from now on it fails on every file
    context, target = dataset[1]
    torch.testing.assert_close(context, expected[0], atol=0.05, rtol=0)
    torch.testing.assert_close(target, expected[1], atol=0.05, rtol=0)
    assert dataset.skipped == []
    with pytest.raises(RuntimeError, match="decodes any more"):  # a named backend has no fallback
        alone[1]
    assert {reason for _, reason in alone.skipped} == {f"failed while training: {probed_by}: decoder crashed"}


def test_mjpeg_avi_reads_through_the_dataset(tmp_path, make_video):
    reference_frames = make_video(tmp_path / "only" / "clip.avi", num_frames=10, codec="mjpeg")
    dataset = VideoFolderDataset(tmp_path, 5, 5, image_size=48, temporal_start="centre")
    context, target = dataset[0]
    assert identify_frames(as_uint8(torch.cat([context, target])), reference_frames[:, :, 8:56]) == list(
        range(10)
    )
