"""`vidgan predict`: read a video, predict its future from K context frames, write context + predictions.

With `--video IN --out OUT`, the output (MP4 or GIF) plays the K context frames, then the F
predicted ones; each of the S samples is one row. Frames are centre-cropped to a square (as vidgan's
training data is) and framed green while they are context and red while they are predicted (the
SVG/SAVP convention). With `--data test.npy|folder --out-dir DIR`, every test sequence is predicted
and written as files for metrics computed elsewhere (FVD): see `vidgan.commands.predict_data`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganforge.cli import alias, parse_options
from ganforge.devices import DEFAULT_DEVICE, DEVICE_HELP, resolve_device
from ganforge.errors import UserError, run_guarded

PROG = "vidgan predict"
FORMATS = (".mp4", ".gif")
BORDER = 2  # pixels of the context / prediction frame colour around each panel
CONTEXT_COLOUR, PREDICTION_COLOUR = (40, 200, 60), (220, 40, 40)


@dataclass(frozen=True)
class PredictOptions:
    """`vidgan predict` options (see `build_parser` for each one's meaning)."""

    ckpt_path: str
    video: str | None = None
    data: str | None = None
    context_frames: int | None = None
    future_frames: int | None = None
    samples: int = 1
    start: int | None = None
    seed: int = 0
    fps: int | None = None
    device: str = DEFAULT_DEVICE
    out: str | None = None
    out_dir: str | None = None
    max_sequences: int | None = None
    batch_size: int = 32
    quiet: bool = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Predict future frames of a video with a vidgan checkpoint. The output plays the context "
        "frames (green frame), then the predictions (red frame), one row per sample. With --data and "
        "--out-dir, predict every sequence of a test set and write predictions.npy, real.npy and one mp4 "
        "per predicted clip (for FVD computed elsewhere).",
    )
    alias(parser, "--ckpt_path", "--ckpt", required=True, help="checkpoint written by `vidgan fit` (.ckpt)")
    parser.add_argument("--video", default=None, help="input video (anything decord or opencv reads)")
    parser.add_argument(
        "--data",
        default=None,
        help="instead of --video: a Moving MNIST .npy (T, N, H, W) uint8 or a video folder, as vidgan eval",
    )
    parser.add_argument(
        "--context-frames", type=int, default=None, help="K frames shown as context (default: the model's Tc)"
    )
    parser.add_argument("--future-frames", type=int, default=None, help="F frames (default: the model's Tf)")
    parser.add_argument("--samples", type=int, default=1, help="S predictions, one row each (default 1)")
    parser.add_argument(
        "--start",
        type=int,
        default=None,
        help="first context frame (default: the last K frames of the video)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fps", type=int, default=None, help="output frame rate (default: the input's; 10 with --data)"
    )
    parser.add_argument("--device", default=DEFAULT_DEVICE, help=DEVICE_HELP)
    parser.add_argument("--out", default=None, help="output .mp4 or .gif (with --video)")
    parser.add_argument("--out-dir", default=None, help="output folder (with --data)")
    parser.add_argument("--max-sequences", type=int, default=None, help="with --data: the first N sequences")
    parser.add_argument("--batch-size", type=int, default=32, help="with --data: sequences per batch")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def read_context(path: Path, count: int, start: int | None) -> tuple[np.ndarray, float]:
    """`count` RGB frames (K, H, W, 3) uint8 from `start` (default: the last `count`), and the video's fps."""
    from vidgan.data.video_reader import VideoDecodeError, probe_video, read_frames

    try:
        info = probe_video(path)
        if count > info.num_frames:
            raise UserError(
                f"--video '{path}' has {info.num_frames} frames, fewer than the {count} context frames "
                "(--context-frames, default: the model's)"
            )
        first = info.num_frames - count if start is None else start
        if first < 0 or first + count > info.num_frames:
            raise UserError(
                f"--video '{path}' has {info.num_frames} frames; context frames {first}..{first + count - 1} "
                "do not fit (check --start and --context-frames)"
            )
        return read_frames(path, list(range(first, first + count)), info.backend), info.fps
    except VideoDecodeError as err:
        raise UserError(f"--video '{path}' cannot be decoded: {err}") from None


def crop_square(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, C) -> (T, S, S, C), S = min(H, W), cut from the centre."""
    height, width = frames.shape[1:3]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return np.ascontiguousarray(frames[:, top : top + side, left : left + side])


def compose(context: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """context (K, H, W, 3) and predictions (S, F, H, W, 3) uint8 -> frames (K + F, S * H', W', 3).

    Row s plays the context, then sample s; H' = H + 2 BORDER, W' = W + 2 BORDER.
    """
    samples = predictions.shape[0]
    shown = np.concatenate([np.broadcast_to(context, (samples, *context.shape)), predictions], axis=1)
    pad = ((0, 0), (0, 0), (BORDER, BORDER), (BORDER, BORDER), (0, 0))
    framed = np.pad(shown, pad)  # (S, K + F, H', W', 3)
    inner = np.zeros(framed.shape[2:4], dtype=bool)
    inner[BORDER:-BORDER, BORDER:-BORDER] = True
    framed[:, : context.shape[0], ~inner] = CONTEXT_COLOUR
    framed[:, context.shape[0] :, ~inner] = PREDICTION_COLOUR
    return np.concatenate(list(framed), axis=1)  # rows stacked along H


def check_options(options: PredictOptions) -> None:
    """One-line errors for flags that do not fit together or are out of range."""
    if (options.video is None) == (options.data is None):
        raise UserError("give --video (one clip) or --data (a test set), one of the two")
    if options.video is not None and (options.out is None or options.out_dir is not None):
        raise UserError("--video writes one file: give --out (not --out-dir)")
    if options.data is not None:
        if options.out_dir is None or options.out is not None:
            raise UserError("--data writes a folder of clips: give --out-dir (not --out)")
        if options.context_frames is not None or options.start is not None:
            raise UserError("--context-frames and --start apply to --video; --data uses the model's context")
    for name in ("context_frames", "future_frames", "samples", "fps", "max_sequences", "batch_size"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')}={value} must be >= 1")
    if options.start is not None and options.start < 0:
        raise UserError(f"--start={options.start} must be >= 0")


def run(options: PredictOptions) -> None:
    check_options(options)
    if options.video is not None:
        predict_video(options)
    else:
        predict_test_set(options)


def predict_test_set(options: PredictOptions) -> None:
    """--data PATH --out-dir DIR: every sequence, S samples each, as .npy and mp4 files."""
    from rich.progress import Progress

    from vidgan.commands.predict_data import write_predictions

    if not Path(options.data).exists():
        raise FileNotFoundError(f"--data '{options.data}' does not exist")
    with Progress(disable=options.quiet) as progress:
        meta = write_predictions(options, progress)
    clips = meta["sequences"] * meta["samples"]
    print(f"{PROG}: wrote {clips} predicted clips of {meta['sequences']} sequences to {options.out_dir}")


def predict_video(options: PredictOptions) -> None:
    """--video IN --out OUT: one clip, context then predictions, one row per sample."""
    from rich.progress import Progress

    from ganforge.media_files import write_clip
    from vidgan.predictor import FramePredictor

    out = Path(options.out)
    if out.suffix.lower() not in FORMATS:
        raise UserError(f"--out '{out}' must end in {' or '.join(FORMATS)}")
    if not Path(options.video).is_file():
        raise FileNotFoundError(f"--video '{options.video}' does not exist")
    device = resolve_device(options.device)
    with Progress(disable=options.quiet) as progress:
        task = progress.add_task("load checkpoint", total=4)
        predictor = FramePredictor.from_checkpoint(options.ckpt_path, device=device)
        count = options.context_frames or predictor.context_frames
        future = options.future_frames or predictor.future_frames
        progress.update(task, advance=1, description="decode video")
        frames, fps = read_context(Path(options.video), count, options.start)
        context = crop_square(frames)
        progress.update(task, advance=1, description=f"predict {options.samples} x {future} frames")
        predictions = predictor.predict(
            context, future_frames=future, num_samples=options.samples, seed=options.seed
        )
        progress.update(task, advance=1, description=f"write {out.name}")
        out.parent.mkdir(parents=True, exist_ok=True)
        write_clip(compose(context, predictions), out, options.fps or max(1, round(fps)))
        progress.update(task, advance=1, description="done")
    print(
        f"{PROG}: wrote {out}: {count} context + {future} predicted frames, {options.samples} sample row(s)"
    )


def main(argv: list[str]) -> int:
    """`vidgan predict ...` (argv without the command name); returns the exit code."""
    options = parse_options(build_parser(), PredictOptions, argv)
    return run_guarded(PROG, lambda: run(options))
