"""FramePredictor.predict overhead: the public API vs a bare generator forward on the same batch.

The model is the Moving MNIST DVD-GAN-FP of configs/vidgan/moving_mnist.yaml (10 -> 10 frames at
64x64; random weights: the work per call does not depend on them). Each case times
`predictor.predict(context, F, S, seed)` and `generator(context_repeated, z)` with the same
(B * S) clips, alternating the two so machine noise hits both alike. The predict side includes
everything the API adds: input checks, seeded latent draws, per-sample context gathering, the
output copy. Goal: overhead <= 5% of the forward.

On a shared CPU the A/B medians move by several percent from load alone, so each case also times
predict around a generator whose forward costs nothing (`InstantGenerator`): that is the API's own
cost, reported as a fraction of the bare forward (`overhead_api_only`).

    python bench/vidgan_inference.py [--repeats 15] [--batch 8] [--threads 1] [--device cpu]

Writes bench/results/vidgan_inference.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import yaml

from vidgan.module import VideoGAN
from vidgan.predictor import FramePredictor

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "vidgan" / "moving_mnist.yaml"
RESULT = ROOT / "bench" / "results" / "vidgan_inference.json"


def seconds(fn, device: torch.device) -> float:
    """Wall time of one call of fn, synchronising the device around it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def summary(times: list[float]) -> dict[str, float]:
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


class InstantGenerator(torch.nn.Module):
    """Stands in for the generator with a zero-cost forward (a preallocated output), to time the API alone."""

    def __init__(self, real: torch.nn.Module, rows: int) -> None:
        super().__init__()
        for name in (
            "context_frames",
            "future_frames",
            "channels",
            "resolution",
            "latent_dim",
            "num_classes",
        ):
            setattr(self, name, getattr(real, name))
        device = next(real.parameters()).device
        self.anchor = torch.nn.Parameter(torch.zeros(1, device=device))  # FramePredictor reads the device
        size = real.resolution
        self.out = torch.zeros(rows, real.future_frames, real.channels, size, size, device=device)

    def forward(self, context, z=None, labels=None, future_frames=None):  # noqa: ANN001, ANN201
        return self.out[: context.shape[0], :future_frames]


def run_case(predictor: FramePredictor, batch: int, samples: int, repeats: int, device: torch.device) -> dict:
    """Time predict vs the bare forward for (batch, samples); `repeats` alternating timed calls of each."""
    gen = torch.Generator().manual_seed(0)
    tc, tf, res = predictor.context_frames, predictor.future_frames, predictor.resolution
    context = torch.rand(batch, tc, predictor.channels, res, res, generator=gen).to(device)
    repeated = context.repeat_interleave(samples, dim=0)
    # The latents predict(seed=0) draws, so both sides do exactly the same arithmetic.
    z = torch.randn(batch * samples, predictor.latent_dim, generator=torch.Generator().manual_seed(0)).to(
        device
    )
    generator = predictor.generator

    def bare() -> None:
        with torch.no_grad():
            generator(repeated, z)

    def api() -> None:
        predictor.predict(context, future_frames=tf, num_samples=samples, seed=0)

    for fn in (bare, api):  # warm-up: allocator, kernels, lazy inits
        fn()
    times: dict[str, list[float]] = {"bare": [], "predict": []}
    for i in range(repeats):  # pairs, in alternating order, so drifting machine load hits both sides
        for name, fn in (("bare", bare), ("predict", api))[:: 1 if i % 2 == 0 else -1]:
            times[name].append(seconds(fn, device))
    bare_s, predict_s = summary(times["bare"]), summary(times["predict"])
    paired = [p / b - 1.0 for p, b in zip(times["predict"], times["bare"])]
    # The API's own cost, free of forward-time noise: predict around a generator that costs nothing.
    instant = FramePredictor(InstantGenerator(generator, batch * samples), predictor.batch_size)
    api_only = [
        seconds(lambda: instant.predict(context, future_frames=tf, num_samples=samples, seed=0), device)
        for _ in range(20 * repeats)
    ]
    return {
        "batch": batch,
        "samples": samples,
        "clips_per_call": batch * samples,
        "bare_forward_s": bare_s,
        "predict_s": predict_s,
        "overhead_median": predict_s["median"] / bare_s["median"] - 1.0,
        "overhead_min": predict_s["min"] / bare_s["min"] - 1.0,
        "overhead_paired": summary(paired),  # predict / bare - 1 within each adjacent pair
        "api_only_s": summary(api_only),
        "overhead_api_only": statistics.median(api_only) / bare_s["median"],  # API cost / forward cost
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed calls of each side per case (>= 5)")
    parser.add_argument("--batch", type=int, default=8, help="contexts per call (B)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(RESULT))
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error(f"--repeats={args.repeats} must be >= 5")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    init_args = yaml.safe_load(CONFIG.read_text())["model"]["init_args"]
    torch.manual_seed(0)
    module = VideoGAN(**init_args)
    predictor = FramePredictor(module.ema.model.to(device), batch_size=64)
    cases = [run_case(predictor, args.batch, samples, args.repeats, device) for samples in (1, 4)]
    result = {
        "what": "FramePredictor.predict vs a bare generator forward on the same (B * S) clips",
        "config": str(CONFIG.relative_to(ROOT)),
        "frames": f"{predictor.context_frames} -> {predictor.future_frames} at {predictor.resolution}x"
        f"{predictor.resolution}",
        "device": str(device),
        "threads": args.threads,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "goal": "overhead_median <= 0.05",
        "cases": cases,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for case in cases:
        print(
            f"B={case['batch']} S={case['samples']}: "
            f"forward {case['bare_forward_s']['median'] * 1e3:.1f} ms, "
            f"predict {case['predict_s']['median'] * 1e3:.1f} ms -> overhead {case['overhead_median']:+.1%} "
            f"(median of {args.repeats}; min/min {case['overhead_min']:+.1%}, paired median "
            f"{case['overhead_paired']['median']:+.1%}); the API alone: "
            f"{case['api_only_s']['median'] * 1e3:.2f} ms = {case['overhead_api_only']:.2%} of the forward"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
