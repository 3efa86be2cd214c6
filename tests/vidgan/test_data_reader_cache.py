"""Readers that stay open: the same frames as a fresh open, in any clip order, least recently used closed."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from vidgan.data import VideoFolderDataset
from vidgan.data import video_reader as reader_module
from vidgan.data.video_reader import ReaderCache, read_frames


@pytest.mark.parametrize("backend", ["decord", "opencv"])
def test_a_reused_reader_decodes_the_same_frames_in_any_order(video_files, reference_frames, backend):
    readers = ReaderCache(capacity=2)
    # forward past a keyframe, backward (seek), a short step forward (decoded forward), a long jump
    for indices in ([13, 14, 15, 16], [2, 3, 4, 5], [7, 8, 9], [8, 10], [20, 21, 22, 23], [0, 1]):
        cached = read_frames(video_files["mp4"], indices, backend, readers)
        np.testing.assert_array_equal(cached, read_frames(video_files["mp4"], indices, backend))
        error = np.abs(cached.astype(np.float32) - reference_frames[indices]).mean(axis=(1, 2, 3))
        assert error.max() < 0.8  # each frame is the requested one (a neighbour costs ~1.5)
    assert (readers.misses, readers.hits) == (1, 5)


def test_the_least_recently_used_reader_is_closed_first(video_files):
    readers = ReaderCache(capacity=2)
    for name in ("mp4", "mkv", "mp4", "avi", "mp4", "mkv"):
        read_frames(video_files[name], [0, 1], "opencv", readers)
    # mp4 miss, mkv miss, mp4 hit, avi miss (closes mkv), mp4 hit, mkv miss (closes avi)
    assert (readers.misses, readers.hits) == (4, 2)


def test_a_pickled_or_forked_cache_starts_empty(video_files, class_root, monkeypatch):
    readers = ReaderCache(capacity=3)
    read_frames(video_files["mp4"], [0], "decord", readers)
    with monkeypatch.context() as patch:
        patch.setattr(reader_module.os, "getpid", lambda: -1)  # as in a forked DataLoader worker
        read_frames(video_files["mp4"], [1], "decord", readers)
        assert (readers.misses, readers.hits) == (1, 0)  # counters restart with the new process
    copy = pickle.loads(pickle.dumps(readers))  # what a spawned DataLoader worker receives
    assert copy.capacity == 3 and (copy.hits, copy.misses) == (0, 0)
    read_frames(video_files["mp4"], [0], "decord", copy)
    assert copy.misses == 1
    dataset = VideoFolderDataset(class_root, 2, 2, image_size=16, open_readers=0)
    assert dataset.readers is None and dataset[0][0].shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="open_readers=-1 must be >= 0"):
        VideoFolderDataset(class_root, 2, 2, open_readers=-1)
