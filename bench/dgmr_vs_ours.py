"""DVD-GAN-FP (vidgan.VideoGAN) vs the `dgmr` package (DGMR 1.4.4): one full D+G training step, side by side.

The peer lives in a bench-only environment, never in the project's dependencies. Create it once
(pip only; no tensorflow; torch is the project venv's):

    .venv/bin/python -m pip install --target /tmp/dgmr-site --no-deps dgmr antialiased_cnns \\
        pytorch_msssim einops safetensors 'huggingface_hub==0.26.5'
    python bench/dgmr_vs_ours.py --dgmr-site /tmp/dgmr-site [--repeats 5] [--threads 1]

Without an importable `dgmr` the script says so and exits 0 (`make bench` skips it).

Shapes follow /work/shared/BENCH-NOTES.md: DGMR's context stack takes 4 frames, so both sides
predict 4 -> 8 frames of 64x64x1 at batch 4.
- DGMR(forecast_steps=8, latent_channels=256, context_channels=32, generation_steps=1) with
  SpatialDiscriminator(num_layers=2) and TemporalDiscriminator(num_layers=1) (its default D
  crashes at 64x64). Its own `training_step` (2 D steps + 1 G step on one batch) runs without a
  Trainer: `optimizers()`, `manual_backward` and `log_dict` are replaced by plain calls.
- Ours: configs/vidgan/moving_mnist.yaml with context/future frames set to 4/8, trained through
  GANModule + a real Lightning Trainer (so Lightning's own per-step cost counts against us). One
  step is two batches (d_steps_per_g_step: 2): D, then D + G, on the same batch.
- Ours, width-matched: the same config with g_widths [154, 77] and d_widths [87, 174, 174]: G has
  4,056,518 parameters (DGMR's 4,054,787) and D 3,043,436 (DGMR's 3,034,466), 7.10M in all, within
  0.3% of DGMR's 7.09M (the shipped config, 1.24M, has ~5.7x fewer). Widths are for the generator
  with a ConvGRU + two residual blocks per resolution (GENERATOR_FORMAT 2).
- Ours, FLOP-matched: g_widths [88, 44], d_widths [49, 98, 98]: 152.2 GFLOP per step against
  DGMR's 152.5 (-0.2%), with 2.42M parameters. Equal parameters cost ours 470 GFLOP, 3.1x DGMR's:
  DVD-GAN-FP's two ConvGRUs (both at 16x16, unrolled over the 8 frames) and both Ds run at higher
  resolution per parameter. The shipped config costs 73 GFLOP.

`DGMR.__init__` turns on `torch.autograd.set_detect_anomaly(True)` globally; the main figures are
with anomaly detection off for both, and a shorter pass times both with it on. Runs alternate
(ours, ours width-matched, DGMR) so machine load hits all alike. FLOPs of one step of each are
counted with torch.utils.flop_counter.FlopCounterMode; one step of each is profiled with
torch.profiler (top ops by self CPU time).

Writes bench/results/dgmr_vs_ours.json {"ratio": ours_step / dgmr_step at equal parameter count,
"ratio_config": shipped config / DGMR, "ratio_flop_matched", "params_ours": ..., "params_dgmr": ...}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from batch_timing import fit_repeated_batch
from stats import summary
from torch.utils.flop_counter import FlopCounterMode

from vidgan.data.datamodule import linked_model_args
from vidgan.module import VideoGAN

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "vidgan" / "moving_mnist.yaml"
RESULT = ROOT / "bench" / "results" / "dgmr_vs_ours.json"
CONTEXT, FUTURE, SIZE, BATCH = 4, 8, 64, 4
WIDTH_MATCHED = {"g_widths": [154, 77], "d_widths": [87, 174, 174]}  # G, D params within 0.3% of DGMR
FLOP_MATCHED = {"g_widths": [88, 44], "d_widths": [49, 98, 98]}  # step FLOPs within 0.3% of DGMR


def params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def total_params(model: torch.nn.Module) -> int:
    """Parameters of G and D together (DGMR and VideoGAN both name them generator / discriminator)."""
    return params(model.generator) + params(model.discriminator)


# ---------------------------------------------------------------------------------------- ours
def build_ours(widths: dict[str, list[int]] | None = None) -> VideoGAN:
    config = yaml.safe_load(CONFIG.read_text())
    init_args = config["model"]["init_args"] | linked_model_args(config["data"])
    init_args.update(context_frames=CONTEXT, future_frames=FUTURE, **(widths or {}))
    return VideoGAN(**init_args)


def ours_steps(model: VideoGAN, batch: tuple[torch.Tensor, torch.Tensor], warmup: int, steps: int) -> float:
    """Seconds per full step (2 batches: D, then D + G) through a Lightning Trainer, after `warmup` steps."""
    times = fit_repeated_batch(model, batch, 2 * (warmup + steps), log_every_n_steps=25)  # the config's
    return (times[-1] - times[2 * warmup]) / steps


def build_dgmr() -> torch.nn.Module:
    """DGMR at BENCH-NOTES' configuration, with its optimisers wired in and Lightning calls made plain."""
    import dgmr
    from dgmr.discriminators import SpatialDiscriminator, TemporalDiscriminator

    model = dgmr.DGMR(
        forecast_steps=FUTURE,
        input_channels=1,
        output_shape=SIZE,
        latent_channels=256,  # its minimum
        context_channels=32,  # a multiple of 16
        generation_steps=1,  # G samples for its grid-cell regulariser; 1 matches a plain hinge GAN
    )
    torch.autograd.set_detect_anomaly(False)  # DGMR.__init__ switched it on globally
    model.discriminator.spatial_discriminator = SpatialDiscriminator(
        input_channels=1, num_timesteps=8, num_layers=2
    )
    model.discriminator.temporal_discriminator = TemporalDiscriminator(input_channels=1, num_layers=1)
    (g_opt, d_opt), _ = model.configure_optimizers()
    model.optimizers = lambda: (g_opt, d_opt)
    model.manual_backward = lambda loss: loss.backward()
    model.log_dict = lambda *args, **kwargs: None
    model.train()
    return model


def dgmr_steps(
    model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor], warmup: int, steps: int
) -> float:
    """Seconds per DGMR `training_step` (2 D + 1 G on one batch), after `warmup` steps."""
    for _ in range(warmup):
        model.training_step(batch, 0)
    start = time.perf_counter()
    for _ in range(steps):
        model.training_step(batch, 0)
    return (time.perf_counter() - start) / steps


# ---------------------------------------------------------------------------------------- FLOPs, profile
def flops_of(run: Callable[[], object]) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return counter.get_total_flops()


def top_ops(run: Callable[[], object], rows: int = 8) -> list[dict[str, object]]:
    """The ops with most self CPU time in one call of `run`: name, share of the total, calls."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        run()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [
        {"op": e.key, "self_cpu_share": round(e.self_cpu_time_total / total, 3), "calls": e.count}
        for e in events[:rows]
    ]


# ---------------------------------------------------------------------------------------- main
def import_dgmr(site: str | None) -> bool:
    if site:
        sys.path.insert(0, os.path.abspath(site))
    try:
        import dgmr  # noqa: F401
    except ImportError as error:
        print(
            f"skipped: the dgmr package is not importable ({error}); create the bench env as the "
            "docstring of bench/dgmr_vs_ours.py says and pass --dgmr-site"
        )
        return False
    return True


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--dgmr-site", default=os.environ.get("DGMR_SITE", "/tmp/dgmr-site"))
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs of each side (>= 5)")
    parser.add_argument("--steps", type=int, default=1, help="timed steps per run (after one warm-up)")
    parser.add_argument("--anomaly-repeats", type=int, default=2, help="runs of one step, anomaly on")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULT))
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error(f"--repeats={args.repeats} must be >= 5")
    if not import_dgmr(args.dgmr_site):
        return
    torch.set_num_threads(args.threads)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    batch = (torch.rand(BATCH, CONTEXT, 1, SIZE, SIZE), torch.rand(BATCH, FUTURE, 1, SIZE, SIZE))
    models = {
        "ours": build_ours(),
        "ours_width_matched": build_ours(WIDTH_MATCHED),
        "ours_flop_matched": build_ours(FLOP_MATCHED),
        "dgmr": build_dgmr(),
    }
    steppers = {name: dgmr_steps if name == "dgmr" else ours_steps for name in models}

    def run(name: str, steps: int) -> float:
        return steppers[name](models[name], batch, 0, steps)

    for name in models:  # warm-up: first-call allocations, Adam state
        run(name, 1)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.repeats):
        for name in models:
            times[name].append(run(name, args.steps))
            print(f"{name}: {times[name][-1]:.2f} s/step", flush=True)
    anomaly: dict[str, list[float]] = {name: [] for name in models}
    with torch.autograd.set_detect_anomaly(True):
        for _ in range(args.anomaly_repeats):
            for name in models:
                anomaly[name].append(run(name, 1))
    flops = {name: flops_of(lambda n=name: run(n, 1)) for name in models}
    profiles = {name: top_ops(lambda n=name: run(n, 1)) for name in models}
    median = {name: statistics.median(xs) for name, xs in times.items()}
    result = {
        "command": " ".join(["python", "bench/dgmr_vs_ours.py", *sys.argv[1:]]),
        "what": "one full training step (2 D updates + 1 G update), 4 -> 8 frames of 64x64x1, batch 4",
        "ratio": median["ours_width_matched"] / median["dgmr"],
        "ratio_config": median["ours"] / median["dgmr"],
        "ratio_flop_matched": median["ours_flop_matched"] / median["dgmr"],
        # Under heavy load the fastest run is the least disturbed one: the min-to-min ratios.
        "ratio_min": min(times["ours_width_matched"]) / min(times["dgmr"]),
        "ratio_config_min": min(times["ours"]) / min(times["dgmr"]),
        "ratio_per_run": [a / b for a, b in zip(times["ours_width_matched"], times["dgmr"])],
        "goal": "ratio <= 0.8",
        "params_ours": params(models["ours_width_matched"].generator)
        + params(models["ours_width_matched"].discriminator),
        "params_ours_config": params(models["ours"].generator) + params(models["ours"].discriminator),
        "params_dgmr": params(models["dgmr"].generator) + params(models["dgmr"].discriminator),
        "params": {
            name: {"generator": params(m.generator), "discriminator": params(m.discriminator)}
            for name, m in models.items()
        },
        "width_matched": WIDTH_MATCHED,
        "flop_matched": FLOP_MATCHED,
        "step_s": {name: summary(xs) for name, xs in times.items()},
        "step_s_anomaly_detection_on": {name: summary(xs) for name, xs in anomaly.items()},
        "gflop_per_step": {name: f / 1e9 for name, f in flops.items()},
        "gflop_per_s": {name: flops[name] / 1e9 / median[name] for name in models},
        "top_ops_self_cpu": profiles,
        "repeats": args.repeats,
        "steps_per_run": args.steps,
        "anomaly_repeats": args.anomaly_repeats,
        "threads": args.threads,
        "torch": torch.__version__,
        "dgmr": _version("dgmr"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()},
        "notes": "ours runs through a real Lightning Trainer; DGMR's training_step runs without one "
        "(BENCH-NOTES). DGMR's step also recomputes G under activation checkpointing, back-propagates "
        "its D loss through G (fakes not detached) and runs one more G forward to log samples.",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    headline = ("ratio", "ratio_min", "ratio_config", "ratio_flop_matched", "params_ours", "params_dgmr")
    print(json.dumps({k: result[k] for k in (*headline, "gflop_per_step", "gflop_per_s")}, indent=2))


def _version(package: str) -> str:
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        return version(package)
    return "unknown"


if __name__ == "__main__":
    main()
