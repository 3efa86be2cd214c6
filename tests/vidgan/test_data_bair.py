"""`vidgan data bair`: TFRecords written here in the softmotion30_44k schema, converted without TensorFlow."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tfrecord_writer import bair_record, frame_record, sequence_example, write_tfrecord

from vidgan.cli import main
from vidgan.data.crc32c import crc32c
from vidgan.data.tfrecord import TFRecordError, features, read_records
from vidgan.data.video_reader import read_frames

STEPS = 4


def frames_of(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (STEPS, 64, 64, 3), dtype=np.uint8)


@pytest.fixture
def bair_src(tmp_path):
    """train/traj_0_to_3: records 0, 1 good, 2 with a bad data checksum, 3 without images; test/: 1 good."""
    src = tmp_path / "softmotion30_44k"
    write_tfrecord(
        src / "train" / "traj_0_to_3.tfrecords",
        [
            frame_record(bair_record(frames_of(0))),
            frame_record(bair_record(frames_of(1))),
            frame_record(bair_record(frames_of(2)), corrupt_data_crc=True),
            frame_record(sequence_example({})),
        ],
    )
    write_tfrecord(src / "test" / "traj_0_to_0.tfrecords", [frame_record(bair_record(frames_of(10)))])
    return src


def test_crc32c_matches_the_standard_check_value_and_a_bitwise_loop():
    from tfrecord_writer import crc32c_bitwise

    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720)
    data = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    for size in (0, 1, 3, 4, 255, 256, 257, 3000):
        assert crc32c(data[:size]) == crc32c_bitwise(data[:size])


def test_records_and_features_read_back(bair_src):
    records = list(read_records(bair_src / "train" / "traj_0_to_3.tfrecords"))
    assert [type(r).__name__ for r in records] == ["bytes", "bytes", "TFRecordError", "bytes"]
    assert str(records[2]) == "data checksum mismatch"
    feats = features(records[0])
    assert feats["0/image_aux1/encoded"] == [frames_of(0)[0].tobytes()]
    assert feats["3/action"].shape == (4,) and feats["3/action"].dtype == np.float32
    truncated = bair_src / "cut.tfrecords"
    truncated.write_bytes((bair_src / "train" / "traj_0_to_3.tfrecords").read_bytes()[:-100])
    assert isinstance(list(read_records(truncated))[-1], TFRecordError)


def test_mp4_output_is_lossless_and_resumable(bair_src, tmp_path):
    out = tmp_path / "bair"
    assert main(["data", "bair", "--src", str(bair_src), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    for name, seed in (
        ("train/traj_0_to_3_000.mp4", 0),
        ("train/traj_0_to_3_001.mp4", 1),
        ("test/traj_0_to_0_000.mp4", 10),
    ):
        for backend in ("decord", "opencv"):
            np.testing.assert_array_equal(read_frames(out / name, range(STEPS), backend), frames_of(seed))
    summary = json.loads((out / "bair_summary.json").read_text())
    assert (summary["written"], summary["already_done"], summary["failed"]) == (3, 0, 2)
    assert summary["failures"] == {
        "traj_0_to_3.tfrecords:2": "data checksum mismatch",
        "traj_0_to_3.tfrecords:3": "no '0/image_aux1/encoded' feature: not a BAIR softmotion record",
    }
    (out / "test" / "traj_0_to_0_000.mp4").unlink()
    (out / "test" / "traj_0_to_0_000.mp4.partial").write_bytes(b"an interrupted write")
    assert main(["data", "bair", "--src", str(bair_src), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    summary = json.loads((out / "bair_summary.json").read_text())
    assert (summary["written"], summary["already_done"], summary["failed"]) == (1, 2, 2)
    assert not (out / "test" / "traj_0_to_0_000.mp4.partial").exists()


def test_npy_output_is_t_n_h_w_c_in_file_order(bair_src, tmp_path, capsys):
    write_tfrecord(bair_src / "train" / "traj_10_to_10.tfrecords", [frame_record(bair_record(frames_of(5)))])
    out = tmp_path / "bair"
    argv = ["data", "bair", "--src", str(bair_src), "--out", str(out), "--format", "npy", "--quiet"]
    assert main([*argv, "--workers", "2"]) == 0  # two spawned worker processes
    assert "bair: written 4, already done 0, failed 2 records" in capsys.readouterr().out
    train, test = np.load(out / "train.npy"), np.load(out / "test.npy")
    assert (
        train.shape == (STEPS, 3, 64, 64, 3)
        and train.dtype == np.uint8
        and test.shape == (STEPS, 1, 64, 64, 3)
    )
    for i, seed in enumerate((0, 1, 5)):  # traj_0_to_3 (records 0, 1), then traj_10_to_10
        np.testing.assert_array_equal(train[:, i], frames_of(seed))
    assert not (out / ".bair_parts").exists()
    assert main([*argv, "--workers", "1"]) == 0
    assert "written 0, already done 4" in capsys.readouterr().out


def test_a_source_without_tfrecords_is_a_one_line_error(tmp_path, capsys):
    assert main(["data", "bair", "--src", str(tmp_path), "--out", str(tmp_path / "o"), "--quiet"]) == 1
    assert (
        capsys.readouterr().err.strip()
        == f"vidgan: error: vidgan data bair: no .tfrecord(s) files under '{tmp_path}'"
    )
