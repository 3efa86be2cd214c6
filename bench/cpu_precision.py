"""bf16 autocast against fp32 on this CPU: step speed, compute efficiency and (optionally) quality.

Speed and efficiency, all in one process at one thread count (`--threads`):
- the peak: a 3x3 conv 64->64 forward + backward on (16, 64, 64, 64), in fp32 and under
  `torch.autocast("cpu", dtype=torch.bfloat16)` (FLOPs counted as 3x the forward);
- one training step (a full D + G cycle: `batches_per_g_step` batches) of each family's main CPU
  config at its shipped widths and batch size: configs/vidgan/moving_mnist.yaml and
  configs/t2i/shapes_image.yaml (a random frozen text tower of the config's sizes instead of the
  CLIP file), through a real Lightning Trainer at `32-true` and `bf16-mixed`, the two precisions
  alternating round by round so load drift hits both alike. Each config is measured in a fresh
  interpreter, as a training run has it: in one process the config measured second ran ~10% slower
  (the allocator still held the first one's memory), whichever it was (docs/benchmarks.md);
- the FLOPs of that step (torch.utils.flop_counter.FlopCounterMode), so each step's GFLOP/s and its
  fraction of the same-precision conv peak. The peak is measured again right before every round's
  steps, and the fraction is the median over rounds of step GFLOP/s / that round's peak: on a
  shared machine the load drifts, and a peak taken minutes before the steps would not see theirs.

Quality (`--quality-minutes M`): the vidgan quality table's GAN + L1 row (bench/vidgan_quality.py)
trained for M minutes per run in fp32 and in bf16-mixed, two seeds each. The two precisions of a
seed run side by side at one thread each, so both see the same machine load; every run is scored
on the same fixed test set (best-of-8 by SSIM). bf16 "costs quality" when its mean is worse than
fp32's by more than the spread between fp32's two seeds. Runs already in `--quality-dir` are reused.

    python bench/cpu_precision.py                                   # speed + efficiency, ~10 min
    python bench/cpu_precision.py --quality-minutes 8 --quality-dir runs/bench_precision

Writes bench/results/cpu_precision.json: `vidgan_ratio` and `t2i_image_ratio` (bf16 step time /
fp32 step time), the efficiency table, the load average, and the quality A/B when run (a run
without `--quality-minutes` keeps the file's earlier A/B and names its command).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
import yaml
from batch_timing import fit_repeated_batch
from gpu_step import build, synthetic_batch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "cpu_precision.json"
CONFIGS = {
    "vidgan": ROOT / "configs" / "vidgan" / "moving_mnist.yaml",
    "t2i_image": ROOT / "configs" / "t2i" / "shapes_image.yaml",
}
PRECISIONS = ("32-true", "bf16-mixed")
QUALITY_SEEDS = (0, 1)


def conv_peak_gflops(bf16: bool, iters: int = 10) -> float:
    """3x3 conv 64->64 forward + backward on (16, 64, 64, 64): GFLOP/s, FLOPs = 3x the forward."""
    x = torch.randn(16, 64, 64, 64, requires_grad=True)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1)
    flops = 3 * 2 * 16 * 64 * 64 * 64 * 64 * 9

    def once() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            conv(x).float().sum().backward()

    for _ in range(3):
        once()
    start = time.perf_counter()
    for _ in range(iters):
        once()
    return flops * iters / (time.perf_counter() - start) / 1e9


def measure_alone(name: str, rounds: int, steps: int, threads: int) -> dict[str, Any]:
    """`measure_steps` in a fresh interpreter at `threads` torch threads."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_measure_in_child, name, rounds, steps, threads).result()


def _measure_in_child(name: str, rounds: int, steps: int, threads: int) -> dict[str, Any]:
    quiet_torch(threads)
    return measure_steps(name, rounds, steps)


def quiet_torch(threads: int) -> None:
    """This process's torch threads, Lightning's info logs and warnings off (the bench prints JSON)."""
    torch.set_num_threads(threads)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def step_flops(model: Any, batch: Any, precision: str) -> float:
    """FLOPs of one D + G cycle of `model` on `batch`, counted through a real Trainer."""
    counter = FlopCounterMode(display=False)
    with counter:
        fit_repeated_batch(model, batch, model.batches_per_g_step, "cpu", precision, 100)
    return float(counter.get_total_flops())


def measure_steps(name: str, rounds: int, steps: int) -> dict[str, Any]:
    """Alternating fp32 / bf16 rounds of `steps` D + G cycles each; seconds per cycle per precision."""
    config = yaml.safe_load(CONFIGS[name].read_text())
    data = config["data"]["init_args"]
    models = {}
    for precision in PRECISIONS:
        torch.manual_seed(0)
        models[precision] = build(config)
    per_step = models["32-true"].batches_per_g_step
    batch = synthetic_batch(config, data["batch_size"])
    seconds: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    round_medians: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    peaks: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    for precision in PRECISIONS:  # warm-up: first-call allocations and kernel selection
        fit_repeated_batch(models[precision], batch, per_step, "cpu", precision, 100)
    for _ in range(rounds):
        for precision in PRECISIONS:
            peaks[precision].append(conv_peak_gflops(bf16=precision == "bf16-mixed"))
            bounds = fit_repeated_batch(models[precision], batch, per_step * steps, "cpu", precision, 100)
            cycle_ends = bounds[::per_step]
            cycles = [b - a for a, b in zip(cycle_ends, cycle_ends[1:])]
            seconds[precision] += cycles
            round_medians[precision].append(statistics.median(cycles))
    result: dict[str, Any] = {
        "config": str(CONFIGS[name].relative_to(ROOT)),
        "batch_size": data["batch_size"],
    }
    result["batches_per_step"] = per_step
    for precision in PRECISIONS:
        median = statistics.median(seconds[precision])
        flops = step_flops(models[precision], batch, precision)
        fractions = [flops / 1e9 / s / peak for s, peak in zip(round_medians[precision], peaks[precision])]
        result[precision] = {
            "step_s": {"median": median, "min": min(seconds[precision]), "max": max(seconds[precision])},
            "gflop_per_step": flops / 1e9,
            "gflop_per_s": flops / 1e9 / median,
            "conv_peak_gflop_per_s": {
                "median": statistics.median(peaks[precision]),
                "per_round": peaks[precision],
            },
            "fraction_of_conv_peak": statistics.median(fractions),
            "fraction_per_round": fractions,
        }
    result["bf16_over_fp32_time"] = (
        result["bf16-mixed"]["step_s"]["median"] / result["32-true"]["step_s"]["median"]
    )
    return result


def quality_args(minutes: float, seed: int, precision: str, out: Path) -> list[str]:
    """bench/vidgan_quality.py arguments of one quality run: the GAN + L1 row at one thread."""
    return ["--minutes", str(minutes), "--threads", "1", "--rows", "gan_l1", "--seed", str(seed)] + [
        "--precision",
        precision,
        "--out",
        str(out),
    ]


def quality_ab(minutes: float, work: Path) -> dict[str, Any]:
    """The GAN + L1 row in both precisions, two seeds, each seed's pair side by side at one thread."""
    work.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[int, dict[str, float]]] = {p: {} for p in PRECISIONS}
    for seed in QUALITY_SEEDS:
        outs = {p: work / f"vidgan_{p}_seed{seed}.json" for p in PRECISIONS}
        running = [
            subprocess.Popen(
                [sys.executable, str(ROOT / "bench/vidgan_quality.py"), *quality_args(minutes, seed, p, out)],
                stdout=(work / f"{out.stem}.log").open("w"),
                stderr=subprocess.STDOUT,
            )
            for p, out in outs.items()
            if not out.exists()
        ]
        for proc in running:
            if proc.wait() != 0:
                raise SystemExit(f"bench/vidgan_quality.py failed; see the logs in {work}")
        for precision, out in outs.items():
            report = json.loads(out.read_text())["rows"]
            best = next(row for label, row in report.items() if label.endswith("best-of-8"))
            rows[precision][seed] = {k: best[k] for k in ("mse", "ssim", "g_steps", "train_seconds")}
    summary: dict[str, Any] = {"minutes_per_run": minutes, "seeds": list(QUALITY_SEEDS), "best_of_8": rows}
    for metric, better in (("ssim", max), ("mse", min)):
        fp32 = [rows["32-true"][s][metric] for s in QUALITY_SEEDS]
        bf16 = [rows["bf16-mixed"][s][metric] for s in QUALITY_SEEDS]
        spread = max(fp32) - min(fp32)
        gap = statistics.mean(fp32) - statistics.mean(bf16)  # > 0: bf16 lower
        worse = gap > spread if better is max else -gap > spread
        summary[metric] = {"fp32_mean": statistics.mean(fp32), "bf16_mean": statistics.mean(bf16),
                           "fp32_seed_spread": spread, "bf16_costs_quality": worse}  # fmt: skip
    summary["bf16_costs_quality"] = (
        summary["ssim"]["bf16_costs_quality"] or summary["mse"]["bf16_costs_quality"]
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="alternating fp32/bf16 rounds per config")
    parser.add_argument("--steps", type=int, default=3, help="timed D + G cycles per round")
    parser.add_argument("--quality-minutes", type=float, default=0.0, help="> 0: also run the quality A/B")
    parser.add_argument("--quality-dir", type=Path, default=ROOT / "runs/bench_precision")
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    args = parser.parse_args()
    quiet_torch(args.threads)

    load_before = os.getloadavg()
    steps = {name: measure_alone(name, args.rounds, args.steps, args.threads) for name in args.configs}
    out: dict[str, Any] = {
        "command": "python bench/cpu_precision.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, torch {torch.__version__}, {args.threads} threads",
        "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0]},
        **{f"{name}_ratio": result["bf16_over_fp32_time"] for name, result in steps.items()},
        "steps": steps,
    }
    if args.quality_minutes > 0:
        out["quality_ab"] = quality_ab(args.quality_minutes, args.quality_dir)
    elif args.out.exists() and "quality_ab" in (previous := json.loads(args.out.read_text())):
        # a speed-only run keeps the last quality A/B, with the command that measured it
        out["quality_ab"] = previous["quality_ab"]
        out["quality_ab_command"] = previous.get("quality_ab_command", previous["command"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
