"""Train a tiny VideoGAN on 2 gloo ranks (torchrun) whose clips differ, recording FrameBatchNorm statistics.

Usage: torchrun --nproc_per_node=2 ddp_batchnorm_job.py OUT_DIR SYNC (SYNC 1: `sync_batchnorm=True`
with ganforge's BatchStatisticsSync plugin, as the CLI passes it; 0: neither).
Each rank saves OUT_DIR/rank{R}.pt: for every training-mode FrameBatchNorm call, in call order, the
statistics it normalised with and the ones of its own batch alone.
"""

import os
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset
from vidgan_clips import moving_square_clips

from ganforge.layer_sync import BatchStatisticsSync
from ganforge.trainer import default_strategy
from vidgan.models.blocks import FrameBatchNorm
from vidgan.module import VideoGAN

CALLS: list[dict[str, torch.Tensor]] = []
_statistics = FrameBatchNorm._batch_statistics  # the synchronised path
_normalise_local = FrameBatchNorm._normalise_local  # the per-rank path


def record(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> None:
    local_var, local_mean = torch.var_mean(x, dim=(0, 3, 4), correction=0, keepdim=True)
    CALLS.append({k: v.detach().clone() for k, v in dict(mean=mean, var=var, local_mean=local_mean,
                                                        local_var=local_var).items()})  # fmt: skip


def recording_statistics(self: FrameBatchNorm, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, var = _statistics(self, x)
    record(x, mean, var)
    return mean, var


def recording_normalise_local(
    self: FrameBatchNorm, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    normed, mean, var = _normalise_local(self, x)
    record(x, mean, var)
    return normed, mean, var


def main() -> None:
    out, sync = Path(sys.argv[1]), sys.argv[2] == "1"
    torch.set_num_threads(1)
    FrameBatchNorm._batch_statistics = recording_statistics
    FrameBatchNorm._normalise_local = recording_normalise_local
    rank = int(os.environ["RANK"])
    # The ranks' clips differ (other squares, rank 1 at half brightness), so their batch statistics do.
    clips = moving_square_clips(8, 5, size=16, seed=rank) * (1.0 - 0.5 * rank)
    loader = DataLoader(TensorDataset(clips[:, :2], clips[:, 2:]), batch_size=4)
    torch.manual_seed(0)
    model = VideoGAN(
        context_frames=2, future_frames=3, channels=1, resolution=16, g_widths=[8, 8], latent_dim=4,
        d_widths=[8, 8, 8], spatial_frames=3,
    )  # fmt: skip
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy=default_strategy(2), max_epochs=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False, sync_batchnorm=sync, plugins=[BatchStatisticsSync()] if sync else None,
    )  # fmt: skip
    trainer.fit(model, loader)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"calls": CALLS, "state": model.state_dict()}, out / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
