"""Inference API overhead: FramePredictor.predict and TextToImage.generate vs bare network forwards.

    python bench/inference_overhead.py [--repeats 15] [--threads 1] [--device cpu]

- FramePredictor.predict: the Moving MNIST DVD-GAN-FP of configs/vidgan/moving_mnist.yaml (10 -> 10
  frames at 64x64, random weights: the work per call does not depend on them), B = 8 contexts,
  S = 1 and 4. The bare side calls the EMA generator on the same (B * S) repeated contexts and the
  latents predict(seed=0) draws; predict adds input checks, seeded latent draws, per-sample context
  gathering and the output copy. On a shared CPU the A/B medians move by several percent from load
  alone, so each case also times predict around a generator whose forward costs nothing
  (`InstantGenerator`): the API's own cost, as a fraction of the bare forward (`overhead_api_only`).
- TextToImage.generate: the image stage of configs/t2i/shapes_image.yaml (64 px, random weights, a
  random frozen text tower of the default sizes instead of the CLIP file), no layout stage, B = 8
  captions with given layouts of 3 boxes each (filled masks), S = 1 and 4. The bare side runs
  what the networks must do for the same images: encode the B * S captions with the text tower and
  call the EMA generator on precomputed labels, boxes, masks and noise. generate adds caption and
  layout checks, building the layout tensors from `Box` lists (masks drawn per box), seeded
  noise, chunking and the copy to CPU.
Both sides alternate within each case so machine load hits both alike. Goal: overhead <= 5%.
Writes bench/results/inference_overhead.json.
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
from stats import summary

from t2i.image_stage import ImageGAN
from t2i.pipeline import Box, TextToImage
from vidgan.data.datamodule import linked_model_args
from vidgan.module import VideoGAN
from vidgan.predictor import FramePredictor

ROOT = Path(__file__).resolve().parents[1]
VIDGAN_CONFIG = ROOT / "configs" / "vidgan" / "moving_mnist.yaml"
T2I_CONFIG = ROOT / "configs" / "t2i" / "shapes_image.yaml"
RESULT = ROOT / "bench" / "results" / "inference_overhead.json"
CAPTIONS = [
    "a small red circle left of a large blue square",
    "a green triangle above a yellow diamond",
    "two circles and a square",
    "a large purple diamond",
    "a blue square below a red triangle",
    "three small shapes",
    "a yellow circle right of a green square",
    "a red diamond and a blue circle",
]


def seconds(fn, device: torch.device) -> float:
    """Wall time of one call of fn, synchronising the device around it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def bare_vs_api(bare, api, api_name: str, repeats: int, device: torch.device) -> dict:  # noqa: ANN001
    """Warm both up, then time `repeats` calls of each in alternating pairs; their summaries and overheads.

    Keys: bare_forward_s, <api_name>_s, overhead_median, overhead_min and overhead_paired (api / bare - 1
    within each adjacent pair). Alternating the order each pair lets drifting machine load hit both sides.
    """
    for fn in (bare, api):  # warm-up: allocator, kernels, lazy inits
        fn()
    bare_times: list[float] = []
    api_times: list[float] = []
    for i in range(repeats):
        for times, fn in ((bare_times, bare), (api_times, api))[:: 1 if i % 2 == 0 else -1]:
            times.append(seconds(fn, device))
    bare_s, api_s = summary(bare_times), summary(api_times)
    return {
        "bare_forward_s": bare_s,
        f"{api_name}_s": api_s,
        "overhead_median": api_s["median"] / bare_s["median"] - 1.0,
        "overhead_min": api_s["min"] / bare_s["min"] - 1.0,
        "overhead_paired": summary([a / b - 1.0 for a, b in zip(api_times, bare_times)]),
    }


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


def frame_case(
    predictor: FramePredictor, batch: int, samples: int, repeats: int, device: torch.device
) -> dict:
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

    timed = bare_vs_api(bare, api, "predict", repeats, device)
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
        **timed,
        "api_only_s": summary(api_only),
        # API cost / forward cost
        "overhead_api_only": statistics.median(api_only) / timed["bare_forward_s"]["median"],
    }


def t2i_case(model: TextToImage, samples: int, repeats: int) -> dict:
    """Time generate vs the bare text-tower + EMA-generator forward for the same B * S images."""
    device = model.device
    layouts = [
        [
            Box("circle", 0.1, 0.1, 0.3, 0.3),
            Box("square", 0.5, 0.2, 0.4, 0.4),
            Box("triangle", 0.2, 0.6, 0.3, 0.3),
        ]
    ] * len(CAPTIONS)
    flat_captions = [c for c in CAPTIONS for _ in range(samples)]
    flat_layouts = [layout for layout in layouts for _ in range(samples)]
    labels, boxes, masks, present = (t.to(device) for t in model.layout_tensors(flat_layouts))
    z = torch.randn(
        len(flat_captions), model.image.generator.latent_dim, generator=torch.Generator().manual_seed(0)
    )
    image = model.image

    def bare() -> None:
        with torch.no_grad():
            image.ema.model(z.to(device), image.encode(flat_captions), labels, masks, present)

    def api() -> None:
        model.generate(CAPTIONS, num_samples=samples, seed=0, layouts=layouts)

    return {
        "captions": len(CAPTIONS),
        "samples": samples,
        "images_per_call": len(flat_captions),
        **bare_vs_api(bare, api, "generate", repeats, device),
    }


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--repeats", type=int, default=15, help="timed calls of each side per case (>= 5)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="torch device of both models")
    parser.add_argument("--out", default=str(RESULT))
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error(f"--repeats={args.repeats} must be >= 5")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    config = yaml.safe_load(VIDGAN_CONFIG.read_text())
    vidgan = VideoGAN(**config["model"]["init_args"], **linked_model_args(config["data"]))
    predictor = FramePredictor(vidgan.ema.model.to(device), batch_size=64)
    init_args = yaml.safe_load(T2I_CONFIG.read_text())["model"]["init_args"]
    image_stage = ImageGAN(**(init_args | {"clip_path": None, "layout_checkpoint": None}))
    text_to_image = TextToImage(image_stage).to(device)
    frame_cases = [frame_case(predictor, 8, samples, args.repeats, device) for samples in (1, 4)]
    t2i_cases = [t2i_case(text_to_image, samples, args.repeats) for samples in (1, 4)]
    result = {
        "command": "python bench/inference_overhead.py",
        "goal": "overhead_median <= 0.05",
        "frame_predictor": {"config": str(VIDGAN_CONFIG.relative_to(ROOT)), "cases": frame_cases},
        "text_to_image": {"config": str(T2I_CONFIG.relative_to(ROOT)), "cases": t2i_cases},
        "max_overhead_median": max(c["overhead_median"] for c in frame_cases + t2i_cases),
        "median_overhead_paired": statistics.median(
            c["overhead_paired"]["median"] for c in frame_cases + t2i_cases
        ),
        "device": str(device),
        "threads": args.threads,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for family in ("frame_predictor", "text_to_image"):
        for case in result[family]["cases"]:
            print(family, case.get("samples"), f"overhead {case['overhead_median']:+.3f}")


if __name__ == "__main__":
    main()
