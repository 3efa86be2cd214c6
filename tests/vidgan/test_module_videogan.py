"""VideoGAN's losses, schedule, samples, validation metrics and checkpoint round trip on tiny clips."""

import copy

import pytest
import pytorch_lightning as pl
import torch
from torch.testing import assert_close
from torch.utils.data import DataLoader, TensorDataset
from vidgan_clips import moving_square_clips

from ganforge.checkpoint import load_checkpoint, submodule_state
from ganforge.errors import UserError
from ganforge.losses import hinge_d
from ganforge.media import VideoMedia
from vidgan.baseline_module import ConvGRUBaseline
from vidgan.metrics import frame_metrics
from vidgan.module import REC_LOSSES, VideoGAN

TINY = dict(
    context_frames=2, future_frames=3, channels=1, resolution=16, g_widths=[8, 8], latent_dim=4,
    d_widths=[8, 8, 8], spatial_frames=3,
)  # fmt: skip


def tiny_batch(n=4, seed=0):
    clips = moving_square_clips(n, 5, size=16, seed=seed)
    return clips[:, :2], clips[:, 2:]


def trainer(tmp_path, **kwargs):
    return pl.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, **kwargs,
    )  # fmt: skip


def loader(n=8, batch_size=4):
    clips = moving_square_clips(n, 5, size=16, seed=1)
    return DataLoader(TensorDataset(clips[:, :2], clips[:, 2:]), batch_size=batch_size)


def test_generator_loss_adds_weighted_reconstruction():
    batch = tiny_batch()
    plain = VideoGAN(**TINY, lambda_rec=0.0)
    weighted = copy.deepcopy(plain)
    weighted.lambda_rec = 2.5
    torch.manual_seed(1)
    loss0, logs0 = plain.generator_loss(batch)
    torch.manual_seed(1)
    loss1, logs1 = weighted.generator_loss(batch)
    assert_close(logs0["rec"], logs1["rec"])
    assert_close(loss1, loss0 + 2.5 * logs0["rec"])
    assert_close(loss0, logs0["g_spatial"] + logs0["g_temporal"])


def test_discriminator_loss_is_hinge_on_both_discriminators_with_context():
    context, target = tiny_batch()
    module = VideoGAN(**TINY)
    reference = copy.deepcopy(module)  # same weights and spectral-norm state
    torch.manual_seed(2)
    loss, logs = module.discriminator_loss((context, target))
    torch.manual_seed(2)
    pred = reference.generator(context, reference.noise(4, reference.hparams.latent_dim))
    idx = reference.frame_indices(4, 5)
    real, fake = torch.cat([context, target], 1), torch.cat([context, pred], 1)
    spatial, temporal = reference.discriminator.spatial, reference.discriminator.temporal
    expected = hinge_d(spatial(real, idx), spatial(fake, idx)) + hinge_d(temporal(real), temporal(fake))
    assert_close(loss, expected)
    assert set(logs) == {"ds_d_real", "ds_d_fake", "dt_d_real", "dt_d_fake"}
    loss.backward()
    assert all(p.grad is None for p in module.generator.parameters()), "fakes must be detached for D"


def test_two_discriminator_steps_per_generator_step(tmp_path):
    module = VideoGAN(**TINY)
    trainer(tmp_path, max_epochs=3, enable_checkpointing=False).fit(module, loader(8, 4))  # 6 batches
    assert module.batches_seen == 6 and module.g_step == 3


def test_sample_shows_context_prediction_and_truth():
    context, target = tiny_batch(n=6)
    module = VideoGAN(**TINY)
    media = module.sample((context, target), torch.Generator().manual_seed(0))["video"]
    assert isinstance(media, VideoMedia) and media.frames.dtype == torch.uint8
    assert media.frames.shape == (4, 5, 1, 16, 48)  # 4 clips, Tc + Tf frames, three panels
    pred = module.predict(context[:4], None, torch.Generator().manual_seed(0))
    as_uint8 = lambda x: (x * 255).round().to(torch.uint8)  # noqa: E731
    left, middle, right = media.frames.split(16, dim=-1)
    for panel in (left, middle, right):
        assert torch.equal(panel[:, :2], as_uint8(context[:4]))
    assert torch.equal(left[:, 2:], as_uint8(context[:4, -1:].expand(-1, 3, -1, -1, -1)))
    assert torch.equal(middle[:, 2:], as_uint8(pred))
    assert torch.equal(right[:, 2:], as_uint8(target[:4]))


def test_validation_logs_metrics_of_ema_predictions(tmp_path):
    module = VideoGAN(**TINY)
    context, target = tiny_batch(n=4)
    data = DataLoader(TensorDataset(context, target), batch_size=4)
    (logged,) = trainer(tmp_path).validate(module, data, verbose=False)
    pred = module.predict(context, None, torch.Generator().manual_seed(0))  # batch 0 uses seed 0
    expected = frame_metrics(pred, target)
    for name in ("mse", "mae", "ssim", "psnr"):
        assert abs(logged[f"val/{name}"] - expected[name].mean().item()) < 1e-4


def test_checkpoint_round_trip_restores_ema_generator(tmp_path):
    module = VideoGAN(**TINY, gan=VideoGAN.gan_options(ema_decay=0.5))
    fit = trainer(tmp_path, max_steps=8, enable_checkpointing=False)
    fit.fit(module, loader(8, 4))
    path = tmp_path / "last.ckpt"
    fit.save_checkpoint(path)
    ckpt = load_checkpoint(path, family="vidgan")  # weights_only=True
    restored = VideoGAN(**ckpt["hyper_parameters"])
    restored.ema.model.load_state_dict(submodule_state(ckpt["state_dict"], "ema.model"))
    context, _ = tiny_batch()
    live = module.generator.eval()(context, torch.zeros(4, 4))
    ema = module.predict(context, None, torch.Generator().manual_seed(5))
    assert not torch.allclose(live, module.ema.model(context, torch.zeros(4, 4)))  # EMA is its own copy
    assert_close(restored.predict(context, None, torch.Generator().manual_seed(5)), ema)
    assert ckpt["ganforge"]["g_step"] == module.g_step > 0


def test_baseline_checkpoint_has_the_vidgan_header(tmp_path):
    module = ConvGRUBaseline(context_frames=2, future_frames=3, resolution=16, g_widths=[8, 8])
    fit = trainer(tmp_path, max_steps=2, enable_checkpointing=False)
    fit.fit(module, loader(8, 4))
    fit.save_checkpoint(tmp_path / "base.ckpt")
    ckpt = load_checkpoint(tmp_path / "base.ckpt", family="vidgan")
    restored = ConvGRUBaseline(**ckpt["hyper_parameters"])
    restored.load_state_dict(ckpt["state_dict"])
    context, _ = tiny_batch()
    assert_close(restored.eval().predict(context), module.eval().predict(context))


def test_l1_plus_mse_soft_thresholds_the_mean():
    """Per pixel, MSE's best constant is the mean of the targets (a grey haze where a digit may be);
    L1 + MSE's is 0 while fewer than a quarter of them are lit, and shrinks the mean above that."""
    grid = torch.linspace(0, 1, 101)

    def best(loss, lit):
        target = torch.tensor([1.0] * lit + [0.0] * (10 - lit))
        return grid[torch.stack([loss(x.expand(10), target) for x in grid]).argmin()].item()

    assert best(REC_LOSSES["mse"], 2) == pytest.approx(0.2)
    assert best(REC_LOSSES["l1+mse"], 2) == 0.0  # stays black
    assert best(REC_LOSSES["l1+mse"], 4) == pytest.approx(0.3)  # 0.4 - (1 - 2 * 0.4) / 2
    assert best(REC_LOSSES["l1"], 4) == 0.0


def test_baseline_trains_with_the_chosen_loss_and_names_a_bad_one(tmp_path):
    with pytest.raises(UserError, match="loss='huber'"):
        ConvGRUBaseline(resolution=16, g_widths=[8, 8], loss="huber")
    module = ConvGRUBaseline(context_frames=2, future_frames=3, resolution=16, g_widths=[8, 8], loss="l1+mse")
    fit = trainer(tmp_path, max_steps=2, enable_checkpointing=False)
    fit.fit(module, loader(8, 4))
    assert "train/l1+mse_loss" in fit.logged_metrics
