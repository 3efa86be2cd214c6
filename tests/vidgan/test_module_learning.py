"""Learning tests: D_T sees motion (real vs frame-shuffled clips); VideoGAN + L1 learns to predict squares
(with the pixel head and with the warp head, which starts at copy-last)."""

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset
from vidgan_clips import moving_square_clips

from ganforge.losses import hinge_d
from vidgan.models import TemporalDiscriminator, copy_last_frame, zero_frames
from vidgan.module import VideoGAN


def shuffle_frames(clips: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Each clip (N, T, ...) with its frames in a random order other than the identity."""
    frames = clips.shape[1]
    out = torch.empty_like(clips)
    for i in range(clips.shape[0]):
        order = torch.arange(frames)
        while torch.equal(order, torch.arange(frames)):
            order = torch.randperm(frames, generator=rng)
        out[i] = clips[i, order]
    return out


@pytest.mark.slow
def test_temporal_discriminator_tells_real_from_shuffled_clips():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    d = TemporalDiscriminator(1, [8, 16, 16], pool=1)
    opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.0, 0.999))
    train = moving_square_clips(512, 6, size=16, seed=0)
    for _ in range(120):
        real = train[torch.randint(0, 512, (16,), generator=gen)]
        loss = hinge_d(d(real), d(shuffle_frames(real, gen)))  # the same frames, only their order differs
        opt.zero_grad()
        loss.backward()
        opt.step()
    held_out = moving_square_clips(200, 6, size=16, seed=1)
    d.eval()
    with torch.no_grad():
        real_ok = (d(held_out) > 0).float()
        shuffled_ok = (d(shuffle_frames(held_out, gen)) < 0).float()
    accuracy = torch.cat([real_ok, shuffled_ok]).mean().item()
    assert accuracy >= 0.9, accuracy


@pytest.mark.slow
@pytest.mark.parametrize("output", ["pixels", "warp"])
def test_videogan_with_reconstruction_beats_copy_last_and_black_frames(output):
    pl.seed_everything(0, verbose=False)
    # a 4x4 square moving 2 px per axis per frame: black frames (MSE 0.0625) beat copy-last (0.115)
    clips = moving_square_clips(8, 5, size=16, side=4, speed=2, seed=0)
    context, target = clips[:, :2], clips[:, 2:]
    model = VideoGAN(
        context_frames=2, future_frames=3, channels=1, resolution=16, g_widths=[32, 16], latent_dim=8,
        d_widths=[8, 16, 16], spatial_frames=3, temporal_pool=1, lambda_rec=100.0, rec_loss="mse",
        output=output, gan=VideoGAN.gan_options(g_lr=3e-3, d_lr=1e-3, ema_decay=0.9, ema_start_step=100),
    )  # fmt: skip
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=250, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, DataLoader(TensorDataset(context, target), batch_size=8))  # 125 generator steps
    mse = lambda pred: (pred - target).pow(2).mean().item()  # noqa: E731
    baseline = min(mse(copy_last_frame(context, 3)), mse(zero_frames(context, 3)))
    predicted = mse(model.eval().predict(context, None, torch.Generator().manual_seed(0)))
    assert predicted <= 0.5 * baseline, (predicted, baseline)
