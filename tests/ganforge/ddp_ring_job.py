"""Train the ring GAN with noise carried in the batch, so 2-process DDP and 1 process see the same data.

Usage: python ddp_ring_job.py OUT_DIR DEVICES GLOBAL_BATCH STEPS (under torchrun when DEVICES > 1).
Each rank saves its final state dict to OUT_DIR/rank{R}.pt.
"""

import os
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from ganforge.examples.ring import RingGAN, sample_ring
from ganforge.trainer import default_strategy


class NoiseInBatchRing(RingGAN):
    """RingGAN whose latents come from the batch (x (B, 2), z (B, latent_dim)) instead of an RNG."""

    def discriminator_loss(self, batch):
        x, z = batch
        with torch.no_grad():
            fake = self.generator(z)
        return self.adversarial_d_loss(self.critic, x, fake)

    def generator_loss(self, batch):
        _, z = batch
        return self.g_adversarial(self.critic(self.generator(z))), {}


def main() -> None:
    out, devices, global_batch, steps = (
        Path(sys.argv[1]),
        int(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    x = sample_ring(global_batch * steps, gen)
    z = torch.randn(global_batch * steps, 16, generator=gen)
    # Each global batch is split into `devices` contiguous blocks and rank r takes block r: over one
    # step the ranks together hold exactly the single-process batch, and PacGAN pairs (consecutive
    # samples) are the same pairs (sharded here, not by Lightning's sampler, to control the split).
    rank = int(os.environ.get("RANK", 0))

    def block(t: torch.Tensor) -> torch.Tensor:
        return t.view(steps, devices, global_batch // devices, -1)[:, rank].reshape(-1, t.shape[1])

    shard = TensorDataset(block(x), block(z))
    loader = DataLoader(shard, batch_size=global_batch // devices, shuffle=False)
    torch.manual_seed(1)
    model = NoiseInBatchRing(hidden=64, gan=NoiseInBatchRing.gan_options(ema_decay=0.9, lr_decay="none"))
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy=default_strategy(devices),
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        deterministic=True,
    )
    trainer.fit(model, loader)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save(
        {"state": state, "strategy": type(trainer.strategy).__name__}, out / f"rank{trainer.global_rank}.pt"
    )
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
