"""Every GAN family takes every GANOptions field through `gan`; a partial `gan:` block keeps its defaults."""

from dataclasses import fields, replace
from pathlib import Path

import pytest
import yaml

from ganforge.examples.ring import RingGAN
from ganforge.module import GANModule
from ganforge.options import OPTION_NAMES, GANOptions
from t2i.cli import main as t2i_main
from t2i.image_stage import ImageGAN
from t2i.layout_stage import LayoutGAN
from vidgan.cli import lightning_main as vidgan_main
from vidgan.module import VideoGAN

TEXT = {"text_embed_dim": 32, "text_context_length": 32, "text_width": 64, "text_layers": 1}
FAMILIES = {  # tiny networks of each family
    "ring": lambda gan: RingGAN(hidden=8, gan=gan),
    "vidgan": lambda gan: VideoGAN(
        context_frames=2,
        future_frames=3,
        channels=1,
        resolution=16,
        g_widths=[8, 8],
        latent_dim=4,
        d_widths=[8, 8, 8],
        spatial_frames=3,
        gan=gan,
    ),  # fmt: skip
    "t2i-layout": lambda gan: LayoutGAN(
        ["circle", "square"],
        max_objects=3,
        box_hidden=16,
        box_layers=1,
        box_heads=2,
        shape_hidden=16,
        shape_channels=8,
        d_channels=8,
        mask_size=8,
        layout_size=16,
        gan=gan,
        **TEXT,
    ),  # fmt: skip
    "t2i-image": lambda gan: ImageGAN(
        image_size=32, g_widths=[16, 16, 8, 8], d_widths=[8, 16], object_widths=[8, 8, 8], gan=gan, **TEXT
    ),
}
# Every field away from the core's default.
ALL_SET = GANOptions(
    loss="ns", g_lr=2e-3, d_lr=3e-3, g_betas=(0.1, 0.9), d_betas=(0.2, 0.8), d_steps_per_g_step=3,
    accumulate_grad_batches=2, grad_clip_norm=5.0, gp_weight=1.5, r1_weight=0.5, ema_decay=0.5,
    ema_start_step=7, max_consecutive_nonfinite=3, lr_decay="linear", channels_last=True, compile=True,
)  # fmt: skip


def core_settings(model: GANModule) -> dict:
    """What the core runs with, read from the module's attributes, EMA and optimisers, by option name."""
    d_opt, g_opt = model.configure_optimizers()
    shape_group = next(g for g in g_opt.param_groups if g["lr"] == model.g_lr)  # LayoutGAN: 3 groups
    return {
        "loss": model.loss_name, "g_lr": shape_group["lr"], "d_lr": d_opt.param_groups[0]["lr"],
        "g_betas": shape_group["betas"], "d_betas": d_opt.param_groups[0]["betas"],
        "d_steps_per_g_step": model.d_steps_per_g_step,
        "accumulate_grad_batches": model.accumulate_grad_batches,
        "grad_clip_norm": model.grad_clip_norm, "gp_weight": model.gp_weight, "r1_weight": model.r1_weight,
        "ema_decay": model.ema.decay, "ema_start_step": model.ema.start_step,
        "max_consecutive_nonfinite": model.max_consecutive_nonfinite, "lr_decay": model.lr_decay,
        "channels_last": model.channels_last, "compile": model.compile_networks,
    }  # fmt: skip


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_runs_with_every_option_it_is_given(family):
    default = GANOptions()
    assert all(getattr(ALL_SET, f.name) != getattr(default, f.name) for f in fields(GANOptions))
    model = FAMILIES[family](ALL_SET)
    assert model.family == family and model.gan == ALL_SET
    settings = core_settings(model)
    assert settings.keys() == OPTION_NAMES
    assert settings == ALL_SET.as_dict()
    assert model.hparams["gan"] == ALL_SET.as_dict()


def print_config(main, argv: list[str], capsys) -> dict:
    """The resolved config that `<family> fit ... --print_config` prints."""
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *argv, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_a_partial_vidgan_block_keeps_two_d_steps_and_takes_overrides(tmp_path: Path, capsys):
    config = tmp_path / "partial.yaml"
    model = {"class_path": "vidgan.module.VideoGAN", "init_args": {"gan": {"g_lr": 0.003}}}
    config.write_text(yaml.safe_dump({"model": model}))
    argv = ["--config", str(config), "--model.init_args.gan.ema_decay=0.5"]
    gan = print_config(vidgan_main, argv, capsys)["model"]["init_args"]["gan"]
    assert GANOptions(**gan) == VideoGAN.gan_options(g_lr=0.003, ema_decay=0.5)
    assert gan["d_steps_per_g_step"] == 2  # DVD-GAN's, although the block does not name it


def test_a_t2i_config_block_and_a_command_line_override_merge(capsys):
    config = Path(__file__).resolve().parents[2] / "configs/t2i/shapes_image_tiny.yaml"
    gan = print_config(t2i_main, ["--config", str(config), "--model.init_args.gan.g_lr=1e-3"], capsys)
    written = yaml.safe_load(config.read_text())["model"]["init_args"]["gan"]
    expected = replace(ImageGAN.gan_options(**written), g_lr=1e-3)
    assert GANOptions(**gan["model"]["init_args"]["gan"]) == expected
