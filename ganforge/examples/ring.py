"""The ring-of-8-Gaussians toy GAN (Metz et al. 2017, "Unrolled GANs"), trained through GANModule.

Real data: 8 Gaussians with std 0.02 whose means sit evenly on a circle of radius 2. The metrics
follow VEEGAN (Srivastava et al. 2017): a sample is high quality when it lies within 3 std of
its nearest mode; a mode is covered when it receives at least a fifth of its fair share
(N / 8) of high-quality samples, so a mode hit by a few stray points does not count.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ganforge.errors import UserError
from ganforge.media import ImageMedia
from ganforge.module import GANModule
from ganforge.options import GANOptions

RADIUS, STD, NUM_MODES = 2.0, 0.02, 8


def ring_modes(device: torch.device | str = "cpu") -> Tensor:
    """The 8 mode centres, shape (8, 2)."""
    angles = torch.arange(NUM_MODES, device=device) * (2 * math.pi / NUM_MODES)
    return RADIUS * torch.stack([angles.cos(), angles.sin()], dim=1)


def sample_ring(n: int, rng: torch.Generator | None = None) -> Tensor:
    """n points from the ring mixture, shape (n, 2)."""
    modes = ring_modes()
    idx = torch.randint(NUM_MODES, (n,), generator=rng)
    return modes[idx] + STD * torch.randn(n, 2, generator=rng)


def ring_metrics(samples: Tensor) -> dict[str, float]:
    """`modes_covered` (0-8) and `high_quality_fraction` for samples (N, 2)."""
    dist = torch.cdist(samples.float(), ring_modes(samples.device))  # (N, 8)
    nearest_dist, nearest = dist.min(dim=1)
    high_quality = nearest_dist <= 3 * STD
    counts = torch.bincount(nearest[high_quality], minlength=NUM_MODES)
    min_count = max(1, int(0.2 * samples.shape[0] / NUM_MODES))
    return {
        "modes_covered": int((counts >= min_count).sum()),
        "high_quality_fraction": float(high_quality.float().mean()),
    }


class RingBatches(IterableDataset):
    """`num_batches` fresh batches (batch_size, 2) of ring samples; seeded, worker-aware."""

    def __init__(self, num_batches: int, batch_size: int = 256, seed: int = 0) -> None:
        self.num_batches, self.batch_size, self.seed = num_batches, batch_size, seed

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[Tensor]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        gen = torch.Generator().manual_seed(self.seed * 1000 + worker)
        for _ in range(worker, self.num_batches, workers):
            yield sample_ring(self.batch_size, gen)


class RingDataModule(pl.LightningDataModule):
    """Ring batches for `ganforge fit`: `batches_per_epoch` fresh batches each epoch."""

    def __init__(self, batch_size: int = 256, batches_per_epoch: int = 1000, seed: int = 0) -> None:
        super().__init__()
        self.batch_size, self.batches_per_epoch, self.seed = batch_size, batches_per_epoch, seed

    def train_dataloader(self) -> DataLoader:
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        data = RingBatches(self.batches_per_epoch, self.batch_size, self.seed + 7919 * epoch)
        return DataLoader(data, batch_size=None)


def mlp(in_dim: int, hidden: int, out_dim: int, depth: int = 2) -> nn.Sequential:
    """`depth` ReLU hidden layers of width `hidden`."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(hidden, out_dim))


# Defaults chosen for short CPU runs: Adam 1e-3 with betas (0.5, 0.999) for both networks, a
# linear learning-rate decay to 0 that sharpens the modes at the end, and a fast EMA (train_ring
# starts it in the last fifth of the run: averaging an oscillating early G hurts).
RING_GAN = GANOptions(
    g_lr=1e-3, d_lr=1e-3, g_betas=(0.5, 0.999), d_betas=(0.5, 0.999), ema_decay=0.99, lr_decay="linear"
)


class RingGAN(GANModule):
    """MLP G: z (B, latent_dim) -> x (B, 2); MLP D: x (B, 2) -> logit (B,).

    D sees `pack` samples at once (PacGAN, Lin et al. 2018): with pack=1 this recipe dropped to 2-6
    of 8 modes on some seeds; packing lets D notice a batch that lacks diversity. `gan` holds the
    core options (`GANOptions`); its default is `RING_GAN`.
    """

    family = "ring"

    def __init__(
        self,
        latent_dim: int = 16,
        hidden: int = 256,
        pack: int = 2,
        gan: GANOptions = RING_GAN,
    ) -> None:
        if pack < 1:
            raise UserError(f"pack={pack} must be >= 1")
        super().__init__(mlp(latent_dim, hidden, 2), mlp(2 * pack, hidden, 1), gan)
        self.save_hyperparameters()
        self.latent_dim, self.pack = latent_dim, pack

    def critic(self, x: Tensor) -> Tensor:
        """Logits (B / pack,) for points (B, 2): D judges `pack` samples jointly (PacGAN)."""
        return self.discriminator(x.reshape(-1, 2 * self.pack)).squeeze(-1)

    def discriminator_loss(self, batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        with torch.no_grad():
            fake = self.generator(self.noise(batch.shape[0], self.latent_dim))
        return self.adversarial_d_loss(self.critic, batch, fake)

    def generator_loss(self, batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        fake = self.generator(self.noise(batch.shape[0], self.latent_dim))
        return self.g_adversarial(self.critic(fake)), {}

    @torch.no_grad()
    def sample_points(self, n: int, rng: torch.Generator | None = None) -> Tensor:
        """n points (n, 2) from the EMA generator."""
        return self.ema.model(self.noise(n, self.latent_dim, rng=rng))

    def sample(self, batch: Tensor) -> dict[str, ImageMedia]:
        """A scatter of the real batch (B, 2) against as many EMA samples, as one image."""
        from ganforge.examples.plots import scatter_image

        fake = self.sample_points(batch.shape[0], torch.Generator().manual_seed(0))
        return {"points": ImageMedia(scatter_image(batch.cpu(), fake.cpu())[None])}


def train_ring(
    out_dir: str,
    steps: int = 8000,
    seed: int = 0,
    loss: str = "hinge",
    batch_size: int = 256,
    progress: bool = True,
) -> dict[str, float]:
    """Train RingGAN for `steps` generator steps, write metrics.json and samples.png to `out_dir`."""
    import json
    from pathlib import Path

    from ganforge.console import quiet_lightning
    from ganforge.examples.plots import scatter_real_fake
    from ganforge.trainer import progress_callbacks

    pl.seed_everything(seed, workers=True, verbose=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = RingGAN(gan=RingGAN.gan_options(loss=loss, ema_start_step=int(0.8 * steps)))
    data = DataLoader(RingBatches(steps, batch_size, seed), batch_size=None)
    with quiet_lightning():  # the Trainer's start-up lines too
        trainer = pl.Trainer(
            accelerator="cpu",
            max_epochs=1,
            max_steps=steps,  # generator steps: one per batch
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=progress,
            callbacks=progress_callbacks(progress),
            log_every_n_steps=100,
        )
        trainer.fit(model, data)
    fake = model.sample_points(2500, torch.Generator().manual_seed(seed)).cpu()
    metrics = {**ring_metrics(fake), "steps": steps, "seed": seed, "loss": loss}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    scatter_real_fake(sample_ring(2500, torch.Generator().manual_seed(seed + 1)), fake, out / "samples.png")
    return metrics
