"""Core overhead: ring-GAN training steps through GANModule + Lightning vs a hand-written PyTorch loop.

Both do exactly the same work per batch: one D update (G forward without grad, D on real and fake,
hinge loss, backward, Adam) and one G update (G forward, D, hinge, backward, Adam) plus the EMA
lerp. Runs alternate in one process so machine noise hits both alike.

    python bench/core_overhead.py [--steps 600] [--repeats 5] [--threads 2]

Writes bench/results/core_overhead.json with {"ratio": ganforge_step / raw_step, ...}.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import statistics
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from ganforge.losses import hinge_d, hinge_g
from ganforge.ring import RingBatches, RingGAN


def lightning_run(steps: int, warmup: int) -> float:
    """Seconds per batch through GANModule, timed after `warmup` batches."""
    model = RingGAN()
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
    )
    trainer.fit(model, DataLoader(RingBatches(warmup + steps, 256, seed=0), batch_size=None))
    return (time.perf_counter() - marks["start"]) / steps


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


def summary(xs: list[float]) -> dict[str, float]:
    return {"median_ms": 1e3 * statistics.median(xs), "min_ms": 1e3 * min(xs), "max_ms": 1e3 * max(xs)}


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "core_overhead.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    ours, raw = [], []
    for _ in range(args.repeats):  # alternate so drifts in machine load hit both
        ours.append(lightning_run(args.steps, args.warmup))
        raw.append(raw_run(args.steps, args.warmup))
    result = {
        "benchmark": "ring GAN, batch 256, one D + one G update per batch",
        "ratio": statistics.median(ours) / statistics.median(raw),
        "ganforge": summary(ours),
        "raw": summary(raw),
        "steps_per_run": args.steps,
        "repeats": args.repeats,
        "threads": args.threads,
        "command": "python bench/core_overhead.py",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
