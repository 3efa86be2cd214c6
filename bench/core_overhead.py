"""Core overhead: training steps through GANModule + Lightning vs a hand-written PyTorch loop.

Two models, each against a loop doing exactly the same forward, backward and optimiser steps:
- the ring GAN (ganforge.examples.ring, batch 256): per batch one D update (G forward without grad, D on
  real and fake, hinge loss, backward, Adam) and one G update (G forward, D, hinge, backward,
  Adam) plus the EMA lerp; the same loop body in a bare manual-optimisation LightningModule
  (`PlainLightningRing`) is timed too, to split Lightning's cost from GANModule's;
- the tiny vidgan config (configs/vidgan/moving_mnist_tiny.yaml, batch 8, 5 -> 5 frames at
  64x64): every batch a D update (D_S on k random frames + D_T, hinge), every second batch also a
  G update (adversarial + 100 x MSE) and the EMA lerp; the loop freezes D during G's update as
  GANModule does. Both sides read the same pre-made batches (no data loading).
Runs alternate in one process so machine noise hits both alike.

    python bench/core_overhead.py [--steps 300] [--vidgan-steps 30] [--repeats 5] [--threads 1]

Writes bench/results/core_overhead.json with {"ratio": ganforge_step / raw_step (ring), ...,
"vidgan": {"ratio": ...}}.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import statistics
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import yaml
from stats import summary
from torch.utils.data import DataLoader

from ganforge.examples.ring import RingBatches, RingGAN
from ganforge.losses import hinge_d, hinge_g
from vidgan.data.datamodule import linked_model_args
from vidgan.models import sample_frame_indices
from vidgan.module import VideoGAN

TINY_VIDGAN = Path(__file__).resolve().parents[1] / "configs" / "vidgan" / "moving_mnist_tiny.yaml"


def lightning_run(steps: int, warmup: int, model: pl.LightningModule | None = None, data=None) -> float:
    """Seconds per batch through GANModule, timed after `warmup` batches (default: the ring GAN)."""
    model = model or RingGAN()
    data = data or RingBatches(warmup + steps, 256, seed=0)
    marks: dict[str, float] = {}

    class Clock(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):  # noqa: ANN001
            if batch_idx == warmup:
                marks["start"] = time.perf_counter()

    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Clock()],
        log_every_n_steps=20,  # the tiny vidgan config's (the ring's train_ring logs every 100)
    )
    trainer.fit(model, DataLoader(data, batch_size=None))
    return (time.perf_counter() - marks["start"]) / steps


class PlainLightningRing(pl.LightningModule):
    """The raw loop's body in a bare manual-optimisation LightningModule: Lightning's own floor."""

    def __init__(self) -> None:
        super().__init__()
        template = RingGAN()
        self.g, self.d, self.pack = template.generator, template.discriminator, template.pack
        self.ema = copy.deepcopy(self.g).requires_grad_(False)
        self.automatic_optimization = False

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999)) for net in (self.d, self.g)]

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        return self.d(x.reshape(-1, 2 * self.pack)).squeeze(-1)

    def training_step(self, real: torch.Tensor, batch_idx: int) -> None:
        d_opt, g_opt = self.optimizers()
        with torch.no_grad():
            fake = self.g(torch.randn(real.shape[0], 16))
        d_opt.zero_grad(set_to_none=True)
        self.manual_backward(hinge_d(self.critic(real), self.critic(fake)))
        d_opt.step()
        g_opt.zero_grad(set_to_none=True)
        self.manual_backward(hinge_g(self.critic(self.g(torch.randn(real.shape[0], 16)))))
        g_opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(self.ema.parameters()), list(self.g.parameters()), 1 - 0.99)


def raw_run(steps: int, warmup: int) -> float:
    """Seconds per batch of the same updates written as a plain loop."""
    template = RingGAN()
    g, d = template.generator, template.discriminator
    ema = copy.deepcopy(g).requires_grad_(False)
    g_opt = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.5, 0.999))
    pack = template.pack

    def critic(x: torch.Tensor) -> torch.Tensor:
        return d(x.reshape(-1, 2 * pack)).squeeze(-1)

    start = 0.0
    for i, real in enumerate(DataLoader(RingBatches(warmup + steps, 256, seed=0), batch_size=None)):
        if i == warmup:
            start = time.perf_counter()
        with torch.no_grad():
            fake = g(torch.randn(real.shape[0], template.latent_dim))
        loss = hinge_d(critic(real), critic(fake))
        d_opt.zero_grad(set_to_none=True)
        loss.backward()
        d_opt.step()
        loss = hinge_g(critic(g(torch.randn(real.shape[0], template.latent_dim))))
        g_opt.zero_grad(set_to_none=True)
        loss.backward()
        g_opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(ema.parameters()), list(g.parameters()), 1 - 0.99)
    return (time.perf_counter() - start) / steps


def tiny_videogan() -> VideoGAN:
    torch.manual_seed(0)
    config = yaml.safe_load(TINY_VIDGAN.read_text())
    return VideoGAN(**config["model"]["init_args"], **linked_model_args(config["data"]))


def vidgan_batches(count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    shape = (8, 5, 1, 64, 64)
    return [(torch.rand(shape, generator=generator), torch.rand(shape, generator=generator))] * count


def vidgan_raw_run(steps: int, warmup: int) -> float:
    """Seconds per batch of VideoGAN's updates (tiny config) written as a plain loop."""
    template = tiny_videogan()
    g, d, k = template.generator, template.discriminator, template.discriminator.spatial.k
    ema = copy.deepcopy(g).requires_grad_(False)
    g_opt = torch.optim.Adam(g.parameters(), lr=2e-3, betas=(0.0, 0.999))
    d_opt = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.0, 0.999))
    frame_rng = torch.Generator().manual_seed(0)
    start = 0.0
    for i, (context, target) in enumerate(vidgan_batches(warmup + steps)):
        if i == warmup:
            start = time.perf_counter()
        with torch.no_grad():
            pred = g(context, torch.randn(context.shape[0], 16))
        real, fake = torch.cat([context, target], dim=1), torch.cat([context, pred], dim=1)
        indices = sample_frame_indices(real.shape[0], real.shape[1], k, frame_rng, real.device)
        loss = hinge_d(d.spatial(real, indices), d.spatial(fake, indices))
        loss = loss + hinge_d(d.temporal(real), d.temporal(fake))
        loss.backward()
        d_opt.step()
        d_opt.zero_grad(set_to_none=True)
        if i % 2 == 1:  # d_steps_per_g_step: 2
            d.requires_grad_(False)
            pred = g(context, torch.randn(context.shape[0], 16))
            fake = torch.cat([context, pred], dim=1)
            indices = sample_frame_indices(fake.shape[0], fake.shape[1], k, frame_rng, fake.device)
            loss = hinge_g(d.spatial(fake, indices)) + hinge_g(d.temporal(fake))
            loss = loss + 100.0 * F.mse_loss(pred, target)
            loss.backward()
            g_opt.step()
            g_opt.zero_grad(set_to_none=True)
            d.requires_grad_(True)
            with torch.no_grad():
                torch._foreach_lerp_(list(ema.parameters()), list(g.parameters()), 1 - 0.99)
    return (time.perf_counter() - start) / steps


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """`stats.summary` of per-step times, in milliseconds (keys median_ms, min_ms, max_ms)."""
    return {f"{key}_ms": 1e3 * value for key, value in summary(seconds).items()}


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--steps", type=int, default=300, help="timed ring batches per run")
    parser.add_argument("--vidgan-steps", type=int, default=30, help="timed tiny-vidgan batches per run")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "core_overhead.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    ours, plain, raw, vid_ours, vid_raw = [], [], [], [], []
    vid_warmup = 4
    for _ in range(args.repeats):  # alternate so drifts in machine load hit both
        ours.append(lightning_run(args.steps, args.warmup))
        ring_data = RingBatches(args.warmup + args.steps, 256, seed=0)
        plain.append(lightning_run(args.steps, args.warmup, PlainLightningRing(), ring_data))
        raw.append(raw_run(args.steps, args.warmup))
        data = vidgan_batches(vid_warmup + args.vidgan_steps)
        vid_ours.append(lightning_run(args.vidgan_steps, vid_warmup, tiny_videogan(), data))
        vid_raw.append(vidgan_raw_run(args.vidgan_steps, vid_warmup))
        print(f"ring {ours[-1] / raw[-1]:.3f}x, tiny vidgan {vid_ours[-1] / vid_raw[-1]:.3f}x", flush=True)
    result = {
        "benchmark": "ring GAN, batch 256, one D + one G update per batch",
        "ratio": statistics.median(ours) / statistics.median(raw),
        "ganforge": summary_ms(ours),
        "raw": summary_ms(raw),
        "ratio_per_run": [a / b for a, b in zip(ours, raw)],
        # The same updates in a bare LightningModule: what Lightning costs without GANModule.
        "plain_lightning": summary_ms(plain),
        "plain_lightning_ratio": statistics.median(plain) / statistics.median(raw),
        "ganforge_vs_plain_lightning": statistics.median(ours) / statistics.median(plain),
        "steps_per_run": args.steps,
        "vidgan": {
            "benchmark": "configs/vidgan/moving_mnist_tiny.yaml, batch 8, D every batch, G every 2nd",
            "ratio": statistics.median(vid_ours) / statistics.median(vid_raw),
            "ganforge": summary_ms(vid_ours),
            "raw": summary_ms(vid_raw),
            "ratio_per_run": [a / b for a, b in zip(vid_ours, vid_raw)],
            "steps_per_run": args.vidgan_steps,
        },
        "goal": "ratio <= 1.05",
        "repeats": args.repeats,
        "threads": args.threads,
        "load_avg": os.getloadavg(),
        "command": "python bench/core_overhead.py",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
