"""BAIR robot pushing (`softmotion30_44k` TFRecords) to mp4 folders or (T, N, H, W, C) .npy, no TensorFlow.

Each record is a `tf.train.SequenceExample` (or `Example`) whose context features hold, for every
step i of the trajectory (30 in the published data), `{i}/image_aux1/encoded`: the raw bytes of
one 64x64x3 uint8 RGB frame despite the name (plus `{i}/image_main/encoded`, `{i}/action` and
`{i}/endeffector_pos`, which are not converted). The aux1 camera is the one SV2P, SAVP and
DVD-GAN-FP train and evaluate on.

Outputs, per split folder of the source (`train/`, `test/`):
- `mp4`: `OUT/<split>/<file stem>_<record:03d>.mp4`, lossless (libx264rgb, qp 0: decoded frames
  equal the source bytes), the video-folder layout VideoDataModule reads (`data_dir: OUT`);
- `npy`: `OUT/<split>.npy`, uint8 (T, N, 64, 64, 3), records in file order (file names sorted by
  their numbers, traj_256 before traj_1024), built from per-file shards in `OUT/.bair_parts/`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganforge.errors import UserError
from vidgan.data.parallel import parallel_map
from vidgan.data.prepare import PrepareSummary, atomic_output
from vidgan.data.tfrecord import TFRecordError, features, read_records

FORMATS = ("mp4", "npy")
FRAME_SHAPE = (64, 64, 3)
IMAGE_KEY = "{step}/image_aux1/encoded"
FPS = 10  # the robot's control rate; only the mp4 container's timing depends on it
PARTS = ".bair_parts"
SUMMARY = "bair_summary.json"


@dataclass
class FileResult:
    """What converting one TFRecord file did: records written, already done, and failed records."""

    written: int = 0
    already_done: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file:record, reason)


def record_frames(record: bytes) -> np.ndarray:
    """RGB uint8 frames (T, 64, 64, 3) of one serialized BAIR record; TFRecordError naming a bad feature."""
    feats, frames = features(record), []
    while (key := IMAGE_KEY.format(step=len(frames))) in feats:
        value = feats[key]
        size = int(np.prod(FRAME_SHAPE))
        if not isinstance(value, list) or len(value) != 1 or len(value[0]) != size:
            got = f"{len(value[0])} bytes" if isinstance(value, list) and len(value) == 1 else "another value"
            raise TFRecordError(f"'{key}' holds {got}, expected one {size}-byte 64x64x3 uint8 frame")
        frames.append(np.frombuffer(value[0], dtype=np.uint8).reshape(FRAME_SHAPE))
    if not frames:
        raise TFRecordError(f"no '{IMAGE_KEY.format(step=0)}' feature: not a BAIR softmotion record")
    return np.stack(frames)


def natural_key(path: Path) -> list:
    """Sort key that orders numbers by value: traj_256_to_511 before traj_1024_to_1279."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.as_posix())]


def tfrecord_files(src: Path) -> list[Path]:
    """The `*.tfrecord(s)` files under src, in natural order."""
    files = [p for p in src.rglob("*") if p.is_file() and p.suffix in (".tfrecord", ".tfrecords")]
    return sorted(files, key=natural_key)


def split_of(src: Path, file: Path) -> str:
    """The split folder of a file relative to src ("train", "test"), "all" for files directly in src."""
    return file.parent.relative_to(src).as_posix() if file.parent != src else "all"


def write_mp4(frames: np.ndarray, path: Path) -> None:
    """Encode RGB uint8 (T, H, W, 3) losslessly to `path` (atomically)."""
    height, width = frames.shape[1:3]
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"]
    cmd += ["-r", str(FPS), "-i", "-", "-c:v", "libx264rgb", "-qp", "0", "-pix_fmt", "rgb24", "-f", "mp4"]
    with atomic_output(path) as partial:
        done = subprocess.run([*cmd, str(partial)], input=frames.tobytes(), capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"ffmpeg failed writing '{path}': {done.stderr.decode(errors='replace')[-300:]}"
            )


def convert_file(file: Path, split_out: Path, fmt: str) -> FileResult:
    """Convert one TFRecord file: mp4s into the folder `split_out`, or an npy shard `split_out/<stem>.npy`."""
    result = FileResult()
    shard = split_out / f"{file.stem}.npy"
    if fmt == "npy" and shard.is_file():
        result.already_done = int(np.load(shard, mmap_mode="r").shape[1])
        return result
    kept: list[np.ndarray] = []
    for number, record in enumerate(read_records(file)):
        name = f"{file.name}:{number}"
        target = split_out / f"{file.stem}_{number:03d}.mp4"
        if fmt == "mp4" and target.is_file() and not isinstance(record, TFRecordError):
            result.already_done += 1
            continue
        try:
            if isinstance(record, TFRecordError):
                raise record
            frames = record_frames(record)
            if kept and frames.shape != kept[0].shape:
                raise TFRecordError(f"{len(frames)} steps, but this file's first record has {len(kept[0])}")
        except TFRecordError as err:
            result.failures.append((name, str(err)))
            continue
        if fmt == "mp4":
            write_mp4(frames, target)
            result.written += 1
        else:
            kept.append(frames)
    if kept:
        with atomic_output(shard) as partial, open(partial, "wb") as stream:
            np.save(stream, np.stack(kept, axis=1))  # (T, n, H, W, C)
        result.written = len(kept)
    return result


def _concatenate(shards: list[Path], target: Path, summary: PrepareSummary) -> None:
    """Join (T, n, H, W, C) shards along N into target (atomically, streamed through a memmap)."""
    arrays = [np.load(shard, mmap_mode="r") for shard in shards]
    shape = arrays[0].shape
    for shard, array in zip(shards, arrays):
        if array.shape[0] != shape[0]:
            summary.fail(
                shard.stem, f"{array.shape[0]} steps per record, the split's first file has {shape[0]}"
            )
    arrays = [a for a in arrays if a.shape[0] == shape[0]]
    total = sum(a.shape[1] for a in arrays)
    with atomic_output(target) as partial:
        out = np.lib.format.open_memmap(
            partial, mode="w+", dtype=np.uint8, shape=(shape[0], total, *shape[2:])
        )
        start = 0
        for array in arrays:
            out[:, start : start + array.shape[1]] = array
            start += array.shape[1]
        out.flush()
        del out


def convert_bair(
    src: str | Path,
    out: str | Path,
    fmt: str = "mp4",
    workers: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> PrepareSummary:
    """Convert every TFRecord file under src into out (see the module docstring) and write bair_summary.json.

    `on_progress(1)` after each TFRecord file. Resumable: complete outputs are kept and counted as
    already done; records that cannot be read are skipped and listed with their reasons.
    """
    src, out = Path(src), Path(out)
    if fmt not in FORMATS:
        raise UserError(f"vidgan data bair: format={fmt!r}, expected one of {FORMATS}")
    if not src.is_dir():
        raise FileNotFoundError(f"vidgan data bair: --src '{src}' is not a directory")
    files = tfrecord_files(src)
    if not files:
        raise FileNotFoundError(f"vidgan data bair: no .tfrecord(s) files under '{src}'")
    summary = PrepareSummary("bair", {"src": str(src), "out": str(out), "format": fmt})
    advance = on_progress if on_progress is not None else (lambda count: None)
    by_split: dict[str, list[Path]] = {}
    for file in files:
        by_split.setdefault(split_of(src, file), []).append(file)
    jobs = []  # (TFRecord file, the folder its outputs go to)
    for split, split_files in by_split.items():
        final = out / f"{split}.npy"
        if fmt == "npy" and final.is_file():  # a split finished by an earlier run
            summary.already_done += int(np.load(final, mmap_mode="r").shape[1])
            advance(len(split_files))
            continue
        folder = out / split if fmt == "mp4" else out / PARTS / split
        jobs += [(file, folder) for file in split_files]
    for result in parallel_map(_convert_job, jobs, fmt, workers=workers):
        summary.written += result.written
        summary.already_done += result.already_done
        for name, reason in result.failures:
            summary.fail(name, reason)
        advance(1)
    if fmt == "npy":
        for split in by_split:
            shards = sorted((out / PARTS / split).glob("*.npy"), key=natural_key)
            if shards and not (out / f"{split}.npy").is_file():
                _concatenate(shards, out / f"{split}.npy", summary)
        shutil.rmtree(out / PARTS, ignore_errors=True)
    summary.write(out / SUMMARY)
    return summary


def _convert_job(job: tuple[Path, Path], fmt: str) -> FileResult:
    return convert_file(job[0], job[1], fmt)
