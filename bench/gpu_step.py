"""Training-step throughput of the paper-scale configs at bf16 on one GPU, and the TFLOP/s they reach.

    python bench/gpu_step.py [--steps 10] [--warmup 3]

For configs/vidgan/kinetics600_64.yaml and configs/t2i/coco_image_256.yaml, at each config's
per-GPU batch (data.batch_size: 64 clips, 16 images) and `precision: bf16-mixed` on one GPU:
- the model is built from the config's init_args (t2i: a random frozen text tower of the default
  sizes instead of the CLIP file, and no layout checkpoint; neither changes the trained networks);
- one synthetic batch (random frames / images, random boxes) is fed over and over through a real
  Lightning Trainer; a step is one full D+G cycle (d_steps_per_g_step batches);
- FLOPs of one step are counted with torch.utils.flop_counter.FlopCounterMode, so achieved
  TFLOP/s = FLOPs / median step time, set against a bf16 8192^3 matmul measured in the same run;
- the peak GPU memory of training (torch.cuda.max_memory_allocated) is recorded.
Without a CUDA GPU it prints "skipped: no CUDA GPU" and exits 0 without writing anything
(`--cpu-smoke` runs the same code on CPU at batch 1 with one step, to check the script itself).
Writes bench/results/gpu_step.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import platform
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import yaml
from batch_timing import fit_repeated_batch
from torch.utils.flop_counter import FlopCounterMode

from vidgan.data.datamodule import linked_model_args

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "gpu_step.json"
CONFIGS = {
    "kinetics600_64": ROOT / "configs" / "vidgan" / "kinetics600_64.yaml",
    "coco_image_256": ROOT / "configs" / "t2i" / "coco_image_256.yaml",
}
# Files the GPU machine does not have; the substitutes keep every trained network as configured.
T2I_OVERRIDES = {"clip_path": None, "layout_checkpoint": None}


def build(config: dict[str, Any]) -> pl.LightningModule:
    module_name, class_name = config["model"]["class_path"].rsplit(".", 1)
    cls = getattr(importlib.import_module(module_name), class_name)
    init_args = dict(config["model"]["init_args"])
    if class_name == "ImageGAN":
        init_args |= T2I_OVERRIDES
    if module_name.startswith("vidgan."):
        init_args |= linked_model_args(config["data"])  # as `vidgan fit` links them
    return cls(**init_args)


def synthetic_batch(config: dict[str, Any], batch: int) -> Any:
    """One batch shaped as the config's data module gives it (values random)."""
    data = config["data"]["init_args"]
    size = data["image_size"]
    if config["model"]["class_path"].startswith("vidgan."):
        channels = data["channels"]
        context = torch.rand(batch, data["context_frames"], channels, size, size)
        return context, torch.rand(batch, data["future_frames"], channels, size, size)
    objects, classes = data["max_objects"], len(config["model"]["init_args"]["class_names"])
    xy, wh = torch.rand(batch, objects, 2) * 0.6, 0.1 + torch.rand(batch, objects, 2) * 0.3
    return {
        "image": torch.rand(batch, 3, size, size),
        "caption": [f"caption number {i}" for i in range(batch)],
        "labels": torch.randint(1, classes + 1, (batch, objects)),
        "boxes": torch.cat([xy, wh], dim=-1),
        "masks": torch.zeros(batch, objects, 0, 0),  # no masks: the generator draws filled boxes
        "object_mask": torch.ones(batch, objects, dtype=torch.bool),
    }


def matmul_tflops(device: torch.device, n: int = 8192, iters: int = 20) -> float:
    """bf16 n x n x n matmul throughput, the reference peak of this run."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * iters / (time.perf_counter() - start) / 1e12


def measure(name: str, args: argparse.Namespace, accelerator: str) -> dict[str, Any]:
    config = yaml.safe_load(CONFIGS[name].read_text())
    data = config["data"]["init_args"]
    batch_size = 1 if args.cpu_smoke else data["batch_size"]
    torch.manual_seed(0)
    model = build(config)
    per_step = model.d_steps_per_g_step  # batches in one full D+G cycle
    batch = synthetic_batch(config, batch_size)
    if accelerator == "gpu":
        torch.cuda.reset_peak_memory_stats()
    bounds = fit_repeated_batch(
        model, batch, per_step * (args.warmup + args.steps), accelerator, "bf16-mixed", 100
    )[per_step * args.warmup :: per_step]
    step_s = [b - a for a, b in zip(bounds, bounds[1:])]
    counter = FlopCounterMode(display=False)
    with counter:
        fit_repeated_batch(model, batch, per_step, accelerator, "bf16-mixed", 100)
    flops = counter.get_total_flops()
    median = statistics.median(step_s)
    return {
        "config": str(CONFIGS[name].relative_to(ROOT)),
        "batch_per_gpu": batch_size,
        "batches_per_step": per_step,
        "params_generator": sum(p.numel() for p in model.generator.parameters()),
        "params_discriminator": sum(p.numel() for p in model.discriminator.parameters()),
        "step_s": {"median": median, "min": min(step_s), "max": max(step_s), "runs": len(step_s)},
        "samples_per_s": per_step * batch_size / median,
        "tflop_per_step": flops / 1e12,
        "tflop_per_s": flops / 1e12 / median,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if accelerator == "gpu" else None,
    }


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--steps", type=int, default=10, help="timed D+G steps per config (>= 5)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--cpu-smoke", action="store_true", help="run on CPU at batch 1 (checks the script)")
    parser.add_argument("--out", default=str(RESULT))
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.cpu_smoke:
        print("skipped: no CUDA GPU (bench/gpu_step.py measures bf16 training on one GPU)")
        return
    if args.cpu_smoke:
        args.steps, args.warmup = 1, 0
    elif args.steps < 5:
        parser.error(f"--steps={args.steps} must be >= 5")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    accelerator = "cpu" if args.cpu_smoke else "gpu"
    device = torch.device("cpu" if args.cpu_smoke else "cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    peak = matmul_tflops(device, n=1024 if args.cpu_smoke else 8192)
    results = {name: measure(name, args, accelerator) for name in CONFIGS}
    for result in results.values():
        result["fraction_of_matmul"] = result["tflop_per_s"] / peak
    out = {
        "command": "python bench/gpu_step.py" + (" --cpu-smoke" if args.cpu_smoke else ""),
        "device": torch.cuda.get_device_name() if accelerator == "gpu" else platform.processor(),
        "precision": "bf16-mixed",
        "matmul_bf16_tflop_per_s": peak,
        "configs": results,
        "torch": torch.__version__,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
