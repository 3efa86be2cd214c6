"""Record the noise 2 gloo ranks draw while training a tiny VideoGAN, straight through and resumed.

Usage: torchrun --nproc_per_node=2 ddp_rng_job.py OUT_DIR
The straight run trains 8 batches (4 generator steps) and saves a checkpoint after batch 4 (every
rank takes part, rank 0 writes); the resumed run starts from it and trains batches 5-8. Every latent
z drawn from the global RNG and every D_S frame-index draw (`frame_rng`) is recorded with the
`batches_seen` of its batch. Each rank saves OUT_DIR/rank{R}.pt: both runs' draws and the straight
run's parameters.
"""

import os
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from ganforge.trainer import default_strategy
from vidgan.module import VideoGAN

DRAWS: list[tuple[str, int, torch.Tensor]] = []
SAVE_AFTER, G_STEPS = 4, 4  # batches; VideoGAN takes 2 batches (D, D+G) per generator step


class RecordingVideoGAN(VideoGAN):
    """VideoGAN that appends each training draw (kind, batches_seen, value) to DRAWS."""

    def noise(self, *shape: int, rng: torch.Generator | None = None) -> torch.Tensor:
        z = super().noise(*shape, rng=rng)
        if rng is None:
            DRAWS.append(("z", self.batches_seen, z.clone()))
        return z

    def frame_indices(self, batch: int, frames: int) -> torch.Tensor:
        idx = super().frame_indices(batch, frames)
        DRAWS.append(("frames", self.batches_seen, idx.clone()))
        return idx


class SaveAfter(pl.Callback):
    """trainer.save_checkpoint(path) once `batches_seen` reaches `batches`."""

    def __init__(self, batches: int, path: Path) -> None:
        self.batches, self.path = batches, path

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: RecordingVideoGAN, *args: object) -> None:
        if pl_module.batches_seen == self.batches:
            trainer.save_checkpoint(self.path)


def fit(out: Path, ckpt_path: Path | None) -> tuple[RecordingVideoGAN, list[tuple[str, int, torch.Tensor]]]:
    pl.seed_everything(0, verbose=False)  # as the CLI does: every rank alike
    DRAWS.clear()
    clips = torch.rand(16, 5, 1, 16, 16)
    model = RecordingVideoGAN(
        context_frames=2, future_frames=3, channels=1, resolution=16, g_widths=[8, 8], latent_dim=4,
        d_widths=[8, 8, 8], spatial_frames=3,
    )  # fmt: skip
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy=default_strategy(2), max_steps=G_STEPS, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False, callbacks=[SaveAfter(SAVE_AFTER, out / "mid.ckpt")],
    )  # fmt: skip
    trainer.fit(
        model, DataLoader(TensorDataset(clips[:, :2], clips[:, 2:]), batch_size=2), ckpt_path=ckpt_path
    )
    return model, list(DRAWS)


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    model, straight = fit(out, None)
    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    _, resumed = fit(out, out / "mid.ckpt")
    rank = int(os.environ["RANK"])
    torch.save({"straight": straight, "resumed": resumed, "params": params}, out / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
