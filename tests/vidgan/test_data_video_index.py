"""The video index: probed once, reused while files are unchanged, re-probed when stale, built by rank 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vidgan.data import VideoFolderDataset
from vidgan.data import video_index as index_module
from vidgan.data.video_index import INDEX_NAME, VideoIndex


@pytest.fixture
def root(tmp_path, make_video) -> Path:
    """root/a/{one,two}.mp4 (24 frames), root/b/three.mp4 (10 frames), root/b/broken.mp4 (not a video)."""
    make_video(tmp_path / "a" / "one.mp4")
    make_video(tmp_path / "a" / "two.mp4")
    make_video(tmp_path / "b" / "three.mp4", num_frames=10)
    (tmp_path / "b" / "broken.mp4").write_text("not a video")
    return tmp_path


@pytest.fixture
def probes(monkeypatch) -> list[str]:
    """The names of the files probed in this process from now on."""
    seen: list[str] = []
    probe = index_module.probe_entry

    def counted(path, backend="auto"):
        seen.append(path.name)
        return probe(path, backend)

    monkeypatch.setattr(index_module, "probe_entry", counted)
    return seen


def test_the_index_records_each_file_and_a_second_start_probes_nothing(root, probes):
    first = VideoFolderDataset(root, 2, 2, image_size=16)
    assert sorted(probes) == ["broken.mp4", "one.mp4", "three.mp4", "two.mp4"] and first.probed == 4
    files = json.loads((root / INDEX_NAME).read_text())["files"]
    assert files["a/one.mp4"] | {"mtime_ns": 0} == {
        "size": (root / "a" / "one.mp4").stat().st_size, "mtime_ns": 0, "skip": None,
        "num_frames": 24, "height": 48, "width": 64, "fps": 10.0, "backend": "opencv",
    }  # fmt: skip
    assert "cannot open" in files["b/broken.mp4"]["skip"] and "num_frames" not in files["b/broken.mp4"]
    probes.clear()
    second = VideoFolderDataset(root, 2, 2, image_size=16)
    assert probes == [] and second.probed == 0
    assert second.entries == first.entries and second.skipped == first.skipped
    longer = VideoFolderDataset(root, 6, 6, image_size=16)  # clip length is applied on reading, not probed
    assert probes == [] and [e.path.name for e in longer.entries] == ["one.mp4", "two.mp4"]
    assert "too short: 10 frames" in dict(longer.skipped)[str(root / "b" / "three.mp4")]


def test_a_changed_size_or_mtime_makes_only_that_entry_stale(root, probes, make_video):
    VideoFolderDataset(root, 2, 2, image_size=16)
    probes.clear()
    make_video(root / "a" / "two.mp4", num_frames=12)  # rewritten: new size and mtime
    stat = (root / "a" / "one.mp4").stat()
    os.utime(root / "a" / "one.mp4", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # touched: mtime only
    dataset = VideoFolderDataset(root, 2, 2, image_size=16)
    assert sorted(probes) == ["one.mp4", "two.mp4"] and dataset.probed == 2
    assert {e.path.name: e.info.num_frames for e in dataset.entries} == {
        "one.mp4": 24,
        "two.mp4": 12,
        "three.mp4": 10,
    }
    probes.clear()
    VideoFolderDataset(root, 2, 2, image_size=16)
    assert probes == []


def test_an_index_from_other_decoders_or_unreadable_is_rebuilt(root, probes, monkeypatch, caplog):
    VideoFolderDataset(root, 2, 2, image_size=16)
    probes.clear()
    VideoFolderDataset(root, 2, 2, image_size=16, backend="opencv")
    assert len(probes) == 4  # entries probed with opencv then decord do not stand for opencv alone
    probes.clear()
    (root / INDEX_NAME).write_text("{truncated")
    dataset = VideoFolderDataset(root, 2, 2, image_size=16, backend="opencv")
    assert len(probes) == 4 and len(dataset) == 3 and "ignoring unreadable video index" in caplog.text


def test_index_path_puts_the_index_elsewhere(root, tmp_path_factory, probes):
    path = tmp_path_factory.mktemp("indexes") / "videos.json"
    VideoFolderDataset(root, 2, 2, image_size=16, index_path=path)
    assert path.is_file() and not (root / INDEX_NAME).exists()
    assert VideoIndex(root, path).load().entries.keys() == {
        "a/one.mp4",
        "a/two.mp4",
        "b/three.mp4",
        "b/broken.mp4",
    }


RANK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from vidgan.data import video_index
    from vidgan.data.video_folder import VideoFolderDataset

    calls = []
    probe = video_index.probe_entry
    video_index.probe_entry = lambda path, backend="auto": calls.append(path.name) or probe(path, backend)
    video_index.WAIT_POLL_S = 0.1
    print("ready", flush=True)
    dataset = VideoFolderDataset(sys.argv[1], 2, 2, image_size=16, rank=int(sys.argv[2]), index_workers=1)
    names = [e.path.name for e in dataset.entries]
    print(json.dumps({"calls": calls, "probed": dataset.probed, "entries": names}))
    """
)


def test_two_ranks_probe_each_file_once_in_total_and_rank_1_waits_for_rank_0(root):
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    def start(rank: int) -> subprocess.Popen:
        cmd = [sys.executable, "-c", RANK_SCRIPT, str(root), str(rank)]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)

    rank1 = start(1)
    assert rank1.stdout.readline().strip() == "ready"  # rank 1 is waiting before rank 0 starts
    rank0 = start(0)
    results = [json.loads(process.communicate(timeout=120)[0].splitlines()[-1]) for process in (rank0, rank1)]
    assert rank0.returncode == 0 and rank1.returncode == 0
    assert sorted(results[0]["calls"]) == ["broken.mp4", "one.mp4", "three.mp4", "two.mp4"]
    assert results[0]["probed"] == 4
    assert results[1]["calls"] == [] and results[1]["probed"] == 0
    assert results[0]["entries"] == results[1]["entries"] == ["one.mp4", "two.mp4", "three.mp4"]


def test_rank_1_without_an_index_times_out_with_a_clear_error(root):
    index = VideoIndex(root)
    with pytest.raises(
        TimeoutError, match=rf"video index '{root / INDEX_NAME}' \(4 of 4 files still missing\)"
    ):
        index_module.wait_for(index, sorted(root.rglob("*.mp4")), timeout_s=0.0)
