"""Score a `vidgan fit` checkpoint against copy-last and black frames on held-out Moving MNIST sequences.

    python -m vidgan.heldout_scores --ckpt_path runs/demo/vidgan/checkpoints/last.ckpt --sequences 64 \
        --out runs/demo/vidgan/metrics.json

The sequences are the test split of the checkpoint's own data settings (`MovingMNISTDataModule`
with no data_dir: a fixed seeded draw from the test digit pool, disjoint from
the training digits, and a different draw from the validation set). Metrics follow OpenSTL
(`vidgan.metrics.frame_metrics`): MSE summed over pixels per frame and SSIM per frame, both averaged
over frames and sequences. The model predicts one sample per sequence (seeded latents).
`make demo` runs this after the vidgan stage.
"""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path
from typing import Any

import torch

from ganforge.checkpoint import load_checkpoint
from ganforge.cli import alias
from ganforge.devices import DEFAULT_DEVICE, DEVICE_HELP
from ganforge.errors import CheckpointError, UserError, run_guarded
from vidgan.data import MovingMNISTDataModule
from vidgan.metrics import frame_metrics
from vidgan.models import copy_last_frame, zero_frames
from vidgan.predictor import FramePredictor

PROG = "vidgan.heldout_scores"
ROWS = ("model", "copy_last", "black_frames")


def heldout_batch(ckpt_path: Path, sequences: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(context (N, Tc, C, H, W), target (N, Tf, C, H, W)): the test split of the checkpoint's data."""
    data = dict(load_checkpoint(ckpt_path, family="vidgan").get("datamodule_hyper_parameters", {}))
    # MovingMNISTDataModule's fields: a video folder has no `digits`; older checkpoints name a `source`
    generated = "digits" in data and data.get("source", "moving_mnist") == "moving_mnist"
    if not generated or data.get("data_dir") is not None:
        raise CheckpointError(
            f"checkpoint '{ckpt_path}' was not trained on generated Moving MNIST (data_dir="
            f"{data.get('data_dir')}); use `vidgan eval` for other data"
        )
    fields = inspect.signature(MovingMNISTDataModule).parameters
    data = {k: v for k, v in data.items() if k in fields}
    module = MovingMNISTDataModule(
        **{**data, "val_sequences": sequences, "batch_size": sequences, "num_workers": 0}
    )
    context, target = next(iter(module.test_dataloader()))[:2]
    return context, target


def score(ckpt_path: Path, sequences: int, device: str = DEFAULT_DEVICE) -> dict[str, Any]:
    """{"model" | "copy_last" | "black_frames": {"mse", "ssim"}} means over the held-out sequences."""
    predictor = FramePredictor.from_checkpoint(ckpt_path, device=device)
    context, target = heldout_batch(ckpt_path, sequences)
    future = target.shape[1]
    predictions = {
        "model": predictor.predict(context, future_frames=future, seed=0)[:, 0],
        "copy_last": copy_last_frame(context, future),
        "black_frames": zero_frames(context, future),
    }
    rows = {}
    for name, pred in predictions.items():
        metrics = frame_metrics(pred, target)
        rows[name] = {k: round(float(metrics[k].mean()), 4) for k in ("mse", "ssim")}
    return {
        "checkpoint": str(ckpt_path),
        "sequences": int(context.shape[0]),
        "context_frames": int(context.shape[1]),
        "future_frames": future,
        "convention": "OpenSTL: MSE summed over C*H*W per frame (pixels in [0, 1]), SSIM per frame; "
        "means over frames and sequences; the model draws one sample per sequence",
        **rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    alias(
        parser, "--ckpt_path", "--ckpt", type=Path, required=True, help="checkpoint written by `vidgan fit`"
    )
    parser.add_argument("--sequences", type=int, default=64, help="held-out sequences to score")
    parser.add_argument("--out", type=Path, required=True, help="metrics.json to write")
    parser.add_argument("--device", default=DEFAULT_DEVICE, help=DEVICE_HELP)
    args = parser.parse_args(argv)

    def run() -> None:
        if args.sequences < 1:
            raise UserError(f"--sequences={args.sequences} must be >= 1")
        result = score(args.ckpt_path, args.sequences, args.device)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{PROG}: {result['sequences']} held-out sequences -> {args.out}")
        for name in ROWS:
            print(f"  {name:<13} MSE {result[name]['mse']:8.2f}   SSIM {result[name]['ssim']:.4f}")

    return run_guarded(PROG, run)


if __name__ == "__main__":
    raise SystemExit(main())
