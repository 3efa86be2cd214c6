"""GANOptions: validation naming the field, the WGAN-GP rule, plain-dict storage, legacy hparams, RingGAN."""

import pickle
import re
from dataclasses import fields, replace

import pytest
import torch

from ganforge.examples.ring import RING_GAN, RingGAN
from ganforge.options import OPTION_NAMES, GANOptions, gan_init_args


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"loss": "lsgan"}, "gan.loss='lsgan'; expected one of ['hinge', 'ns', 'wgan', 'wgan-gp']"),
        ({"g_lr": 0.0}, "gan.g_lr=0.0; expected > 0"),
        ({"d_lr": float("nan")}, "gan.d_lr=nan; expected > 0"),
        ({"g_betas": (0.0, 1.0)}, "gan.g_betas=[0.0, 1.0]; expected two values in [0, 1)"),
        ({"d_betas": [0.5]}, "gan.d_betas=[0.5]; expected two values"),
        ({"d_steps_per_g_step": 0}, "gan.d_steps_per_g_step=0; expected >= 1"),
        ({"accumulate_grad_batches": 0}, "gan.accumulate_grad_batches=0; expected >= 1"),
        ({"max_consecutive_nonfinite": 0}, "gan.max_consecutive_nonfinite=0; expected >= 1"),
        ({"grad_clip_norm": 0.0}, "gan.grad_clip_norm=0.0; expected > 0 or null"),
        ({"gp_weight": -1.0}, "gan.gp_weight=-1.0; expected >= 0"),
        ({"r1_weight": -0.5}, "gan.r1_weight=-0.5; expected >= 0"),
        ({"ema_start_step": -1}, "gan.ema_start_step=-1; expected >= 0"),
        ({"ema_decay": 1.0}, "gan.ema_decay=1.0; expected a value in [0, 1)"),
        ({"lr_decay": "cosine"}, "gan.lr_decay='cosine'; expected one of ['none', 'linear']"),
    ],
)
def test_a_bad_value_is_a_one_line_error_naming_the_field(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        GANOptions(**changes)
    assert "\n" not in str(info.value)


def test_wgan_gp_without_a_weight_takes_the_papers_10_and_an_explicit_weight_stays():
    assert GANOptions(loss="wgan-gp").gp_weight == 10.0
    assert GANOptions(loss="wgan-gp", gp_weight=2.0).gp_weight == 2.0
    assert GANOptions(loss="wgan").gp_weight == 0.0


def test_the_plain_dict_survives_a_weights_only_load_and_rebuilds_the_options(tmp_path):
    options = GANOptions(loss="ns", g_betas=[0.5, 0.9], grad_clip_norm=1.0, lr_decay="linear")
    assert options.g_betas == (0.5, 0.9)  # a YAML list is stored as a tuple
    torch.save({"gan": options.as_dict()}, tmp_path / "hparams.pt")
    loaded = torch.load(tmp_path / "hparams.pt", weights_only=True)["gan"]
    assert GANOptions(**loaded) == options
    torch.save({"gan": options}, tmp_path / "dataclass.pt")
    with pytest.raises(pickle.UnpicklingError, match="GANOptions"):  # why the dict: a dataclass is refused
        torch.load(tmp_path / "dataclass.pt", weights_only=True)


def test_gan_init_args_nests_legacy_flat_keys_over_the_family_defaults():
    legacy = {"hidden": 16, "pack": 2, "loss": "ns", "g_lr": 2e-3, "ema_decay": 0.5}
    args = gan_init_args(legacy, RingGAN.gan_options())
    assert args["hidden"] == 16 and args["pack"] == 2 and OPTION_NAMES.isdisjoint(args)
    assert args["gan"] == replace(RING_GAN, loss="ns", g_lr=2e-3, ema_decay=0.5)  # lr_decay stays linear
    stored = {"hidden": 16, "gan": {"d_lr": 5e-3}}
    assert gan_init_args(stored, RingGAN.gan_options())["gan"] == replace(RING_GAN, d_lr=5e-3)
    with pytest.raises(TypeError, match="future_option"):
        gan_init_args({"gan": {"future_option": 1}}, GANOptions())


def test_ring_gan_reads_its_options_and_stores_them_as_a_plain_dict():
    options = replace(RING_GAN, loss="wgan-gp", d_steps_per_g_step=3, ema_start_step=5)
    model = RingGAN(hidden=8, gan=options)
    assert model.gan == options and model.gp_weight == 10.0 and model.d_steps_per_g_step == 3
    assert model.ema.start_step == 5 and model.loss_name == "wgan-gp"
    assert model.hparams["gan"] == options.as_dict() == model.hparams_initial["gan"]
    assert RingGAN(**model.hparams).gan == options  # load_from_checkpoint passes the dict back
    assert RingGAN(hidden=8, gan={"g_lr": 5e-3}).gan == replace(RING_GAN, g_lr=5e-3)  # a partial block
    assert RingGAN.gan_options() == RING_GAN and {f.name for f in fields(GANOptions)} == OPTION_NAMES
