"""Count the gradient all-reduces of 2-process DDP (CPU, gloo) for the GAN strategies and a plain module.

Usage: torchrun --nproc_per_node=2 ddp_sync_job.py OUT_DIR
Trains the ring GAN (2 D steps per G step, so D, D, G cycles) under "gan_ddp" with
accumulate_grad_batches 1 and 2, and under the old whole-module "ddp_find_unused_parameters_true",
once more with k = 2 and a NaN D loss on rank 1 at the end of an accumulation, then a plain
LightningModule under "gan_ddp"; counts every bucket all-reduce with a DDP
communication hook. Each rank saves OUT_DIR/rank{R}.pt.
"""

import os
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from ddp_ring_job import NoiseInBatchRing
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset

from ganforge.examples.ring import sample_ring
from ganforge.gan_ddp import GAN_DDP_STRATEGY

OLD_STRATEGY = "ddp_find_unused_parameters_true"  # ganforge's default before gan_ddp
BATCHES, BATCH = 8, 8  # per rank; 8 batches = 2 D, D, G cycles with k=2, 4 with k=1


def counting_hook(state: dict[str, int], bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """Count the bucket, then all-reduce it as DDP's default hook does."""
    state["allreduces"] += 1
    state["bytes"] += bucket.buffer().numel() * bucket.buffer().element_size()
    return allreduce_hook(None, bucket)


class CountAllReduces(pl.Callback):
    """Registers `counting_hook` on every DDP wrapper of the strategy once the wrappers exist."""

    def __init__(self) -> None:
        self.state = {"allreduces": 0, "bytes": 0}
        self.wrappers: list[str] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        strategy = trainer.strategy
        wrappers = getattr(strategy, "networks", {}) or {"module": strategy.model}
        for name, ddp in wrappers.items():
            assert isinstance(ddp, DistributedDataParallel), name
            ddp.register_comm_hook(self.state, counting_hook)
            self.wrappers.append(name)


class NaNOnRank1(NoiseInBatchRing):
    """Rank 1's D loss is NaN on batch 1, the last micro-batch of D's first update when k = 2."""

    def discriminator_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        loss, logs = super().discriminator_loss(batch)
        if self.batches_seen == 1 and self.global_rank == 1:
            loss = loss * float("nan")
        return loss, logs


class Plain(pl.LightningModule):
    """A plain (non-GAN) module: the GAN strategy must give it Lightning's whole-module DDP."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(2, 1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.net(batch[0]).square().mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(model: pl.LightningModule, strategy: str, rank: int) -> CountAllReduces:
    gen = torch.Generator().manual_seed(rank)  # the ranks' data differ, so only synced weights agree
    data = TensorDataset(sample_ring(BATCHES * BATCH, gen), torch.randn(BATCHES * BATCH, 16, generator=gen))
    counter = CountAllReduces()
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy=strategy, max_epochs=1, logger=False, callbacks=[counter],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False,
    )  # fmt: skip
    trainer.fit(model, DataLoader(data, batch_size=BATCH))
    return counter


def main() -> None:
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    runs = {}
    for strategy, k in ((GAN_DDP_STRATEGY, 1), (GAN_DDP_STRATEGY, 2), (OLD_STRATEGY, 1)):
        torch.manual_seed(0)
        options = NoiseInBatchRing.gan_options(d_steps_per_g_step=2, accumulate_grad_batches=k)
        model = NoiseInBatchRing(hidden=64, gan=options)
        counter = fit(model, strategy, rank)
        runs[(strategy, k)] = {
            **counter.state,
            "wrappers": counter.wrappers,
            "g_steps": model.g_step,
            "d_steps": model.batches_seen // k,
            "g_params": sum(p.numel() for p in model.generator.parameters()),
            "d_params": sum(p.numel() for p in model.discriminator.parameters()),
            "state": {n: p.detach().clone() for n, p in model.named_parameters()},
        }
    torch.manual_seed(0)
    model = NaNOnRank1(
        hidden=64, gan=NoiseInBatchRing.gan_options(d_steps_per_g_step=2, accumulate_grad_batches=2)
    )
    fit(model, GAN_DDP_STRATEGY, rank)
    runs["nan"] = {
        "nonfinite_steps": model.nonfinite_steps,
        "state": {n: p.detach() for n, p in model.named_parameters()},
    }
    plain = fit(Plain(), GAN_DDP_STRATEGY, rank)
    runs["plain"] = {**plain.state, "wrappers": plain.wrappers}
    out.mkdir(parents=True, exist_ok=True)
    torch.save(runs, out / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
