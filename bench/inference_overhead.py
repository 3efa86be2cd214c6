"""Inference API overhead: FramePredictor.predict and TextToImage.generate vs bare network forwards.

    python bench/inference_overhead.py [--repeats 15] [--threads 1]

- FramePredictor.predict: the cases of bench/vidgan_inference.py (configs/vidgan/moving_mnist.yaml,
  10 -> 10 frames at 64x64, batch 8, S = 1 and 4), run again here.
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
from pathlib import Path

import torch
import yaml
from vidgan_inference import CONFIG as VIDGAN_CONFIG
from vidgan_inference import run_case, seconds, summary

from t2i.image_stage import ImageGAN
from t2i.pipeline import Box, TextToImage
from vidgan.module import VideoGAN
from vidgan.predictor import FramePredictor

ROOT = Path(__file__).resolve().parents[1]
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

    for fn in (bare, api):
        fn()
    times: dict[str, list[float]] = {"bare": [], "generate": []}
    for i in range(repeats):
        for name, fn in (("bare", bare), ("generate", api))[:: 1 if i % 2 == 0 else -1]:
            times[name].append(seconds(fn, device))
    bare_s, api_s = summary(times["bare"]), summary(times["generate"])
    paired = [a / b - 1.0 for a, b in zip(times["generate"], times["bare"])]
    return {
        "captions": len(CAPTIONS),
        "samples": samples,
        "images_per_call": len(flat_captions),
        "bare_forward_s": bare_s,
        "generate_s": api_s,
        "overhead_median": api_s["median"] / bare_s["median"] - 1.0,
        "overhead_min": api_s["min"] / bare_s["min"] - 1.0,
        "overhead_paired": summary(paired),
    }


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--repeats", type=int, default=15, help="timed calls of each side per case (>= 5)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULT))
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error(f"--repeats={args.repeats} must be >= 5")
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    torch.manual_seed(0)
    vidgan = VideoGAN(**yaml.safe_load(VIDGAN_CONFIG.read_text())["model"]["init_args"])
    predictor = FramePredictor(vidgan.ema.model, batch_size=64)
    init_args = yaml.safe_load(T2I_CONFIG.read_text())["model"]["init_args"]
    text_to_image = TextToImage(ImageGAN(**(init_args | {"clip_path": None, "layout_checkpoint": None})))
    frame_cases = [run_case(predictor, 8, samples, args.repeats, device) for samples in (1, 4)]
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
