"""GANModule schedule, non-finite guard, gradient clipping and checkpoint header, on the ring GAN."""

import math
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.testing import assert_close
from torch.utils.data import DataLoader

from ganforge import NonFiniteLossError
from ganforge.checkpoint import AtomicCheckpointIO, load_checkpoint
from ganforge.examples.ring import RingBatches, RingGAN
from ganforge.losses import gradient_penalty, hinge_d, interpolate, r1_penalty
from ganforge.module import check_data_settings


def fit(model: pl.LightningModule, batches: int, **trainer_kwargs) -> pl.Trainer:
    trainer_kwargs = {"enable_checkpointing": False, **trainer_kwargs}
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_kwargs,
    )
    trainer.fit(model, DataLoader(RingBatches(batches, 32, seed=0), batch_size=None))
    return trainer


def adam_steps(opt: torch.optim.Optimizer) -> int:
    return int(next(iter(opt.state.values()))["step"])


@pytest.mark.parametrize(("n_d", "accumulate"), [(1, 1), (2, 1), (2, 3)])
def test_schedule_counts_updates(n_d, accumulate):
    pl.seed_everything(0, verbose=False)
    model = RingGAN(
        hidden=16, gan=RingGAN.gan_options(d_steps_per_g_step=n_d, accumulate_grad_batches=accumulate)
    )
    batches = 12
    trainer = fit(model, batches)
    d_opt, g_opt = (o.optimizer for o in model.optimizers())
    assert adam_steps(d_opt) == batches // accumulate
    assert adam_steps(g_opt) == model.g_step == batches // (accumulate * n_d)
    assert trainer.global_step == model.g_step  # Lightning's step counts generator updates only


class NaNAt(RingGAN):
    """Ring GAN whose D loss is NaN on the batches listed in `bad`."""

    def __init__(self, bad: set[int], **kwargs) -> None:
        super().__init__(hidden=16, **kwargs)
        self.bad = bad

    def discriminator_loss(self, batch):
        loss, logs = super().discriminator_loss(batch)
        return (loss * math.nan if self.batches_seen in self.bad else loss), logs


def test_nonfinite_loss_is_skipped_and_counted():
    pl.seed_everything(0, verbose=False)
    model = NaNAt(bad={3})
    fit(model, 8)
    d_opt = model.optimizers()[0].optimizer
    assert model.nonfinite_steps == 1
    assert adam_steps(d_opt) == 7  # the NaN batch did not step D
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_nonfinite_micro_batch_skips_its_whole_accumulated_update():
    pl.seed_everything(0, verbose=False)
    model = NaNAt(bad={2}, gan=RingGAN.gan_options(accumulate_grad_batches=2))
    fit(model, 8)
    # Batch 2 is the first micro-batch of D's second update (batches 2, 3): that update is skipped.
    assert model.nonfinite_steps == 1
    assert adam_steps(model.optimizers()[0].optimizer) == 8 // 2 - 1
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_run_of_nonfinite_losses_after_the_last_log_step_raises_when_training_ends():
    pl.seed_everything(0, verbose=False)
    model = NaNAt(bad=set(range(2, 100)), gan=RingGAN.gan_options(max_consecutive_nonfinite=4))
    with pytest.raises(NonFiniteLossError, match=r"18 non-finite losses in a row \(last: train/d_loss=nan\)"):
        fit(model, 20, log_every_n_steps=50)  # no log step: the guard's only check is at the end
    assert model.batches_seen == 20 and model.nonfinite_steps == 18


def test_nonfinite_in_a_row_stops_with_message_and_keeps_the_last_good_checkpoint(tmp_path):
    pl.seed_everything(0, verbose=False)
    model = NaNAt(bad=set(range(2, 100)), gan=RingGAN.gan_options(max_consecutive_nonfinite=4))
    saver = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1, save_last=True, save_top_k=0)
    # The guard reads its device-side counters on log steps only: every 2nd batch (indices 1, 3, 5, ...).
    with pytest.raises(NonFiniteLossError, match=r"4 non-finite losses in a row \(last: train/d_loss=nan\)"):
        fit(
            model, 20, enable_checkpointing=True, callbacks=[saver], plugins=[AtomicCheckpointIO()],
            log_every_n_steps=2,
        )  # fmt: skip
    assert model.batches_seen == 5  # stopped at the 4th NaN batch (indices 2, 3, 4, 5), a log step
    # Every batch makes one generator step, so a checkpoint follows each batch. The last one, written
    # after batch 4 (its NaN D loss skipped), is whole, safe to load and holds only finite weights.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    ckpt = load_checkpoint(tmp_path / "last.ckpt", family="ring")
    assert ckpt["ganforge"]["batches_seen"] == 5 and ckpt["ganforge"]["nonfinite_steps"] == 3
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
    restored = RingGAN.load_from_checkpoint(tmp_path / "last.ckpt", hidden=16, weights_only=True)
    assert restored.batches_seen == 5 and restored.nonfinite_steps == 3


def test_gradient_clipping_bounds_update_norm():
    pl.seed_everything(0, verbose=False)
    model = RingGAN(hidden=16, gan=RingGAN.gan_options(grad_clip_norm=1e-3))
    x = torch.randn(32, 2)
    loss, _ = model.discriminator_loss(x)
    loss.backward()
    logs = {}
    model._clip(model.discriminator, logs, "d_grad_norm", log_now=True)
    before = logs["d_grad_norm"]
    after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.discriminator.parameters()]))
    assert before > 1e-2
    assert after == pytest.approx(1e-3, rel=1e-3)


def test_checkpoint_header_and_counters_round_trip(tmp_path):
    pl.seed_everything(0, verbose=False)
    model = RingGAN(hidden=16, gan=RingGAN.gan_options(d_steps_per_g_step=2))
    trainer = fit(model, 6)
    path = tmp_path / "ring.ckpt"
    trainer.save_checkpoint(path)
    ckpt = load_checkpoint(path, family="ring")
    assert ckpt["ganforge"]["g_step"] == 3 and ckpt["ganforge"]["batches_seen"] == 6
    restored = RingGAN.load_from_checkpoint(path, weights_only=True)
    assert restored.g_step == 3 and restored.batches_seen == 6
    for key, value in model.state_dict().items():
        assert torch.equal(value, restored.state_dict()[key]), key


def test_rng_states_round_trip_through_a_safe_checkpoint(tmp_path):
    import random

    import numpy as np

    from ganforge.checkpoint import atomic_torch_save
    from ganforge.rng import restore_rng_states, rng_states

    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    atomic_torch_save({"rng": rng_states()}, tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    restore_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0])
    assert np.array_equal(expected[1], got[1]) and expected[2] == got[2]


@pytest.mark.parametrize(
    ("devices", "num_nodes", "expected"),
    [
        (1, 1, "auto"),
        ("1", 1, "auto"),
        (2, 1, "gan_ddp"),
        ("2", 1, "gan_ddp"),
        ([0, 1], 1, "gan_ddp"),
        (1, 2, "gan_ddp"),
        ("auto", 1, "auto"),
    ],
)
def test_default_strategy_is_gan_safe_ddp_for_many_processes(devices, num_nodes, expected, monkeypatch):
    from ganforge.trainer import default_strategy

    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    assert default_strategy(devices, num_nodes) == expected


class GroupedRing(RingGAN):
    """The ring GAN whose generator optimiser has two param groups at different learning rates."""

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        d_opt, _ = super().configure_optimizers()
        first, *rest = self.generator.parameters()
        groups = [{"params": [first], "lr": 1e-3}, {"params": rest, "lr": 4e-3}]
        return [d_opt, torch.optim.Adam(groups, betas=self.g_betas)]


LINEAR_2E3 = RingGAN.gan_options(g_lr=2e-3, d_lr=2e-3, lr_decay="linear")


def group_lrs(model: RingGAN) -> list[float]:
    return [group["lr"] for opt in model.optimizers() for group in opt.param_groups]


def fit_epochs(model: RingGAN, epochs: int, root, ckpt_path=None) -> pl.Trainer:
    """`epochs` epochs of 3 ring batches (3 generator steps each) towards max_steps=40; last.ckpt
    in `root` after each epoch, as a real run writes it."""
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        max_steps=40,
        logger=False,
        callbacks=[ModelCheckpoint(dirpath=root, save_last=True, save_top_k=0)],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, DataLoader(RingBatches(3, 32, seed=0), batch_size=None), ckpt_path=ckpt_path)
    return trainer


def test_linear_lr_decay_scales_each_param_group_from_its_own_lr_and_resumes(tmp_path):
    pl.seed_everything(0, verbose=False)
    straight = GroupedRing(hidden=16, gan=LINEAR_2E3)
    assert fit_epochs(straight, 4, tmp_path / "straight").global_step == 12
    expected = [lr * (1 - 12 / 40) for lr in (2e-3, 1e-3, 4e-3)]  # D, then the two G groups
    assert group_lrs(straight) == pytest.approx(expected)

    pl.seed_everything(0, verbose=False)
    first = GroupedRing(hidden=16, gan=LINEAR_2E3)
    fit_epochs(first, 2, tmp_path / "first")
    assert group_lrs(first) == pytest.approx([lr * (1 - 6 / 40) for lr in (2e-3, 1e-3, 4e-3)])
    resumed = GroupedRing(hidden=16, gan=LINEAR_2E3)
    trainer = fit_epochs(resumed, 4, tmp_path / "resumed", ckpt_path=tmp_path / "first" / "last.ckpt")
    # Lightning replays a shorter first epoch after resuming an iterable loader, so compare with
    # the schedule at the step the resumed run reached.
    steps = trainer.global_step
    assert steps > 6
    assert group_lrs(resumed) == pytest.approx([lr * (1 - steps / 40) for lr in (2e-3, 1e-3, 4e-3)])


def test_r1_in_adversarial_d_loss_reuses_the_real_logits():
    """R1 differentiates the adversarial pass's own real logits: one critic call on real, one on fake."""
    model = RingGAN(hidden=16, gan=RingGAN.gan_options(r1_weight=2.0))
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    calls = []

    def critic(x):
        calls.append(x)
        return model.critic(x)

    loss, logs = model.adversarial_d_loss(critic, real, fake)
    assert len(calls) == 2
    real_in = real.clone().requires_grad_(True)
    expected_r1 = r1_penalty(model.critic(real_in), real_in)
    assert_close(logs["r1"], expected_r1.detach())
    assert_close(loss, hinge_d(model.critic(real), model.critic(fake)) + 0.5 * 2.0 * expected_r1)


@pytest.mark.parametrize("loss", ["hinge", "ns", "wgan-gp"])
def test_masked_adversarial_d_loss_equals_the_selected_rows(loss):
    """A mask keeps only its rows in the loss, the logs, R1 and the gradient penalty (same interpolates)."""
    torch.manual_seed(0)
    model = RingGAN(hidden=16, pack=1, gan=RingGAN.gan_options(loss=loss, r1_weight=2.0, gp_weight=3.0))
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    mask = torch.tensor([True, False, True, True, False, False, True, False])
    torch.manual_seed(1)
    masked, logs = model.adversarial_d_loss(model.critic, real, fake, mask=mask)
    torch.manual_seed(1)
    alpha = torch.rand(8)[mask]  # the interpolation weights the masked call drew, of the kept rows
    real_in = real[mask].clone().requires_grad_(True)
    real_logits, fake_logits = model.critic(real_in), model.critic(fake[mask])
    r1 = r1_penalty(real_logits, real_in)
    x_hat = interpolate(real[mask], fake[mask], alpha)
    gp = gradient_penalty(model.critic(x_hat), x_hat)
    selected = model.d_adversarial(real_logits, fake_logits) + 0.5 * 2.0 * r1 + 3.0 * gp
    assert_close(masked, selected)
    assert_close(logs["r1"], r1.detach())
    assert_close(logs["gp"], gp.detach())
    assert_close(logs["d_real"], real_logits.detach().mean())
    assert_close(logs["d_fake"], fake_logits.detach().mean())
    params = list(model.discriminator.parameters())
    for got, want in zip(torch.autograd.grad(masked, params), torch.autograd.grad(selected, params)):
        assert_close(got, want)


def test_check_data_settings_names_the_model_and_the_data_field():
    data = SimpleNamespace(image_size=64, class_names=["circle", "square"])
    check_data_settings({"image_size": 64, "class_names": ["circle", "square"], "max_objects": 3}, data)
    check_data_settings({"image_size": 32}, None)  # no data module: nothing to check
    with pytest.raises(ValueError) as info:
        check_data_settings({"image_size": 32, "class_names": ["circle"]}, data)
    assert str(info.value) == (
        "model image_size=32 but data image_size=64; model class_names=['circle'] but data "
        "class_names=['circle', 'square']: set both to the same value"
    )


class SizedRing(RingGAN):
    def data_settings(self) -> dict:
        return {"image_size": 8}


class RingData(pl.LightningDataModule):
    image_size = 16

    def train_dataloader(self) -> DataLoader:
        return DataLoader(RingBatches(8, 2, seed=0), batch_size=None)


def test_a_fit_stops_before_training_when_the_data_disagrees_with_the_model(tmp_path):
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    with pytest.raises(ValueError, match="model image_size=8 but data image_size=16"):
        trainer.fit(SizedRing(hidden=8), datamodule=RingData())
    assert trainer.global_step == 0
