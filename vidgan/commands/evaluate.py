"""`vidgan eval`: OpenSTL metrics of a checkpoint's predictions, and FVD (with a local I3D) or fd_local.

For every test sequence the model sees Tc context frames and predicts F frames S times. metrics.json
holds per-future-step curves and means of MSE/MAE/PSNR/SSIM for the mean over samples and the best
sample per sequence (by SSIM), and a Fréchet distance over context + prediction clips: `fvd` when
`--i3d` points at the StyleGAN-V I3D TorchScript, otherwise `fd_local` from a small feature net trained
here on real clips (see `vidgan.local_features`). A PNG of the curves is written next to it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from ganforge.cli import alias, parse_options
from ganforge.devices import DEFAULT_DEVICE, DEVICE_HELP, resolve_device
from ganforge.errors import UserError, run_guarded

if TYPE_CHECKING:  # imported where used, so `vidgan eval --help` stays fast
    from ganforge.metrics import FrechetDistance
    from vidgan.local_features import LocalVideoFeatures
    from vidgan.metrics import PredictionScores
    from vidgan.predictor import FramePredictor

PROG = "vidgan eval"
CONVENTION = (
    "OpenSTL: per-frame MSE and MAE summed over C*H*W with pixels in [0, 1], PSNR and SSIM per frame; "
    "means over sequences and future steps; best_of_samples = per sequence, the sample with the highest "
    "mean SSIM"
)
FD_LOCAL_NOTE = (
    "Fréchet distance in the feature space of a small 3-D conv net trained locally to tell real clips from "
    "frame-shuffled ones. Not FVD: comparable only between evaluations that share this net"
)
FD_TRAIN_CLIPS = 512  # real clips the local feature net trains on
SEED_STRIDE = 1_000_003  # batch i of seed s draws its latents with seed s * SEED_STRIDE + i


@dataclass(frozen=True)
class EvalOptions:
    """`vidgan eval` options (see `build_parser` for each one's meaning)."""

    ckpt_path: str
    data: str
    out: str
    samples: int = 1
    future_frames: int | None = None
    i3d: str | None = None
    max_sequences: int | None = None
    batch_size: int = 32
    seed: int = 0
    train_data: str | None = None
    fd_net: str | None = None
    fd_steps: int = 300
    device: str = DEFAULT_DEVICE
    quiet: bool = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Score a vidgan checkpoint's predictions: per-step and mean MSE/MAE/PSNR/SSIM (OpenSTL "
        "convention), mean-of-S and best-of-S, and FVD with --i3d (else fd_local, which is not FVD).",
    )
    alias(parser, "--ckpt_path", "--ckpt", required=True, help="checkpoint written by `vidgan fit` (.ckpt)")
    parser.add_argument(
        "--data",
        required=True,
        help="Moving MNIST .npy (T, N, H, W) uint8, or a folder of videos (centre clips)",
    )
    parser.add_argument("--samples", type=int, default=1, help="S predictions per sequence (default 1)")
    parser.add_argument("--future-frames", type=int, default=None, help="F (default: the model's Tf)")
    parser.add_argument("--i3d", default=None, help="StyleGAN-V i3d_torchscript.pt (local file): report FVD")
    parser.add_argument("--max-sequences", type=int, default=None, help="score only the first N sequences")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per batch (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="latents of batch i use seed * 1000003 + i")
    parser.add_argument(
        "--train-data",
        default=None,
        help="real clips for the fd_local net (default: the sibling train.npy or train/ of --data, "
        "else --data)",
    )
    parser.add_argument(
        "--fd-net",
        default=None,
        help="fd_local net: loaded if the file exists, else trained and saved there "
        "(default: OUT_DIR/fd_local_net.pt)",
    )
    parser.add_argument("--fd-steps", type=int, default=300, help="training steps of a new fd_local net")
    parser.add_argument("--device", default=DEFAULT_DEVICE, help=DEVICE_HELP)
    parser.add_argument(
        "--out", required=True, help="metrics.json to write (the plot goes beside it as .png)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


# ---------------------------------------------------------------------------------------------- data
def clip_dataset(
    path: Path, context_frames: int, future_frames: int, size: int, channels: int, start: str = "centre"
) -> Dataset:
    """(context, target) clips from a Moving MNIST .npy or a video folder (videos resized to size x size)."""
    from vidgan.data import MovingMNISTDataset, VideoFolderDataset

    if path.is_dir():
        return VideoFolderDataset(
            path, context_frames, future_frames, size, channels, temporal_start=start, return_labels=False
        )
    if not path.exists():
        raise FileNotFoundError(f"--data '{path}' does not exist")
    if path.suffix != ".npy":
        raise UserError(f"--data '{path}' must be a Moving MNIST .npy file or a folder of videos")
    return MovingMNISTDataset(path, context_frames, future_frames)


def default_train_data(data: Path) -> Path:
    """The sibling training split of test/validation data (`test.npy` -> `train.npy`), else `data` itself."""
    if data.stem.startswith(("test", "val")):
        sibling = data.with_name("train" + data.suffix)
        if sibling.exists():
            return sibling
    return data


def real_clips(dataset: Dataset, limit: int) -> Tensor:
    """Up to `limit` whole clips (N, Tc + Tf, C, H, W) from a (context, target) dataset."""
    items = [dataset[i] for i in range(min(limit, len(dataset)))]
    return torch.stack([torch.cat([item[0], item[1]]) for item in items])


# ---------------------------------------------------------------------------------------------- features
def fd_local_extractor(
    options: EvalOptions, context_frames: int, future_frames: int, channels: int, size: int
) -> tuple[LocalVideoFeatures, dict[str, Any]]:
    """The fd_local feature net (loaded from --fd-net, or trained and saved there) and its record."""
    from vidgan.local_features import load_local_features, save_local_features, train_local_features

    net_path = Path(options.fd_net) if options.fd_net else Path(options.out).parent / "fd_local_net.pt"
    record: dict[str, Any] = {"net": str(net_path), "note": FD_LOCAL_NOTE}
    frames = context_frames + future_frames
    if net_path.exists():
        net = load_local_features(net_path)
        if (net.frames, net.channels) != (frames, channels):
            raise UserError(
                f"--fd-net '{net_path}' was trained on {net.frames}-frame {net.channels}-channel clips, "
                f"these are {frames}-frame {channels}-channel: pass another --fd-net"
            )
        return net, record | {"trained_here": False}
    train_path = Path(options.train_data) if options.train_data else default_train_data(Path(options.data))
    train = clip_dataset(train_path, context_frames, future_frames, size, channels, start="random")
    net, accuracy = train_local_features(
        real_clips(train, FD_TRAIN_CLIPS), steps=options.fd_steps, seed=options.seed
    )
    save_local_features(net, net_path)
    return net, record | {"trained_here": True, "trained_on": str(train_path), "train_accuracy": accuracy}


# ---------------------------------------------------------------------------------------------- run
def check_options(options: EvalOptions) -> None:
    for name in ("samples", "future_frames", "max_sequences", "batch_size", "fd_steps"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')}={value} must be >= 1")
    if Path(options.out).suffix != ".json":
        raise UserError(f"--out '{options.out}' must be a .json file")
    if options.i3d is not None and not Path(options.i3d).is_file():
        raise FileNotFoundError(f"--i3d '{options.i3d}' does not exist (the StyleGAN-V i3d_torchscript.pt)")


def score_batches(
    predictor: FramePredictor,
    loader: DataLoader,
    distance: FrechetDistance,
    options: EvalOptions,
    future: int,
    advance: Callable[[int], None],
) -> PredictionScores:
    """Predict every batch S times; feed the metrics and the Fréchet distance; returns PredictionScores.

    Real clips are context + truth, generated ones context + each sample's prediction.
    """
    from vidgan.metrics import PredictionScores

    scores = PredictionScores()
    for index, (context, target, *_) in enumerate(loader):
        seed = options.seed * SEED_STRIDE + index
        pred = predictor.predict(context, future_frames=future, num_samples=options.samples, seed=seed)
        scores.update(pred, target)
        distance.update(torch.cat([context, target], dim=1), real=True)
        shown = context[:, None].expand(-1, options.samples, -1, -1, -1, -1)
        distance.update(torch.cat([shown, pred], dim=2).flatten(0, 1), real=False)
        advance(context.shape[0])
    return scores


def run(options: EvalOptions) -> dict[str, Any]:
    """Score the checkpoint; write metrics.json and the plot; return what was written."""
    from rich.progress import Progress

    from ganforge.metrics import FrechetDistance
    from vidgan.fvd import I3DFeatures
    from vidgan.predictor import FramePredictor

    check_options(options)
    device = resolve_device(options.device)
    predictor = FramePredictor.from_checkpoint(options.ckpt_path, device=device)
    tc, future = predictor.context_frames, options.future_frames or predictor.future_frames
    data = clip_dataset(Path(options.data), tc, future, predictor.resolution, predictor.channels)
    if options.max_sequences is not None:
        data = Subset(data, range(min(options.max_sequences, len(data))))
    channels, size = data[0][0].shape[1], data[0][0].shape[-1]
    if options.i3d is not None:
        extractor, fd_name, fd_record = I3DFeatures(options.i3d, device), "fvd", {"i3d": str(options.i3d)}
    else:
        extractor, fd_name = None, "fd_local"
    with Progress(disable=options.quiet) as progress:
        if extractor is None:
            progress.add_task("train the fd_local feature net", total=None)
            extractor, fd_record = fd_local_extractor(options, tc, future, channels, size)
        distance = FrechetDistance(extractor)
        task = progress.add_task(f"predict {options.samples} x {future} frames", total=len(data))
        loader = DataLoader(data, batch_size=options.batch_size, shuffle=False)
        scores = score_batches(
            predictor, loader, distance, options, future, lambda n: progress.advance(task, n)
        )
    real, generated = distance.counts()
    result = {
        "checkpoint": str(options.ckpt_path),
        "data": str(options.data),
        "sequences": scores.sequences,
        "samples": options.samples,
        "context_frames": tc,
        "future_frames": future,
        "trained_future_frames": predictor.future_frames,
        "seed": options.seed,
        "convention": CONVENTION,
        "mean": scores.means(),
        "per_step": scores.per_step(),
        fd_name: distance.compute(),
        f"{fd_name}_details": fd_record
        | {"real_clips": real, "generated_clips": generated, "clip_frames": tc + future},
    }
    report(result, fd_name, options)
    return result


def report(result: dict[str, Any], fd_name: str, options: EvalOptions) -> None:
    """Write metrics.json and the plot of its curves beside it; print the one-line summary."""
    from vidgan.commands.eval_plot import plot_metric_curves

    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    title = f"{Path(options.ckpt_path).name} on {Path(options.data).name}: {result['sequences']} sequences"
    title += f" x {options.samples} samples"
    plot_metric_curves(result["per_step"], out.with_suffix(".png"), title)
    mean = result["mean"]["mean_of_samples"]
    summary = " ".join(f"{name}={value:.4g}" for name, value in mean.items())
    label = "fvd" if fd_name == "fvd" else "fd_local (not FVD)"
    print(f"{PROG}: {summary} (mean of {options.samples}) {label}={result[fd_name]:.4g} -> {out}")


def main(argv: list[str]) -> int:
    """`vidgan eval ...` (argv without the command name); returns the exit code."""
    options = parse_options(build_parser(), EvalOptions, argv)
    return run_guarded(PROG, lambda: run(options))
