"""FramePredictor (docs/python_api.md): numpy and torch round trips, EMA weights, seeds, roll-out, errors."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from fixtures_eval import TINY, tiny_checkpoint
from torch.testing import assert_close
from torch.utils.data import DataLoader, TensorDataset
from vidgan_clips import moving_square_clips

from ganforge.checkpoint import CheckpointError, load_checkpoint, submodule_state
from vidgan import FramePredictor
from vidgan.baseline_module import ConvGRUBaseline

TC, TF, LATENT = TINY["context_frames"], TINY["future_frames"], TINY["latent_dim"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("predictor") / "tiny.ckpt")


@pytest.fixture(scope="module")
def predictor(ckpt):
    return FramePredictor.from_checkpoint(ckpt, device="cpu")


def contexts(batch=3, frames=TC, size=16, seed=0):
    """torch float (B, T, 1, size, size) in [0, 1]."""
    return moving_square_clips(batch, frames, size=size, seed=seed) * 0.8 + 0.1


def test_loads_config_and_ema_weights_from_the_checkpoint(ckpt, predictor):
    assert (predictor.context_frames, predictor.future_frames, predictor.resolution) == (TC, TF, 16)
    assert (predictor.channels, predictor.latent_dim) == (1, LATENT)
    state = load_checkpoint(ckpt, family="vidgan")["state_dict"]
    ema, live = submodule_state(state, "ema.model"), submodule_state(state, "generator")
    ours = predictor.generator.state_dict()
    assert all(torch.equal(ours[k], ema[k]) for k in ema)
    assert any(not torch.equal(ema[k], live[k]) for k in ema), "EMA and live G must differ after training"
    assert not predictor.generator.training
    assert ours.keys() == ema.keys()  # the generator alone: no discriminator or live-G copy was built


def test_inference_network_is_the_modules_own_architecture():
    from vidgan.models import VideoGenerator
    from vidgan.module import VideoGAN

    torch.manual_seed(0)
    module = VideoGAN(**TINY)
    network = VideoGAN.inference_network(**TINY)
    assert isinstance(network, VideoGenerator)
    expected = module.ema.model.state_dict()
    assert {k: v.shape for k, v in network.state_dict().items()} == {k: v.shape for k, v in expected.items()}
    with pytest.raises(TypeError, match="g_width"):
        VideoGAN.inference_network(**TINY, g_width=[8])


def test_torch_round_trip_is_the_ema_generator_on_seeded_latents(predictor):
    context = contexts(batch=3)
    out = predictor.predict(context, future_frames=TF, num_samples=2, seed=7)
    assert out.shape == (3, 2, TF, 1, 16, 16) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    z = torch.randn(6, LATENT, generator=torch.Generator().manual_seed(7))  # row b * S + s
    expected = predictor.generator(context.repeat_interleave(2, dim=0), z)
    assert_close(out.flatten(0, 1), expected)


def test_numpy_round_trip_matches_the_torch_path(predictor):
    frames = (contexts(batch=1, frames=4)[0] * 255).round().to(torch.uint8)  # (T, 1, H, W)
    context = frames.permute(0, 2, 3, 1).numpy()  # (T, H, W, C) uint8, T=4 > Tc: the last Tc are used
    out = predictor.predict(context, future_frames=TF, num_samples=2, seed=3)
    assert out.shape == (2, TF, 16, 16, 1) and out.dtype == np.uint8
    as_torch = predictor.predict(frames[None].float() / 255, future_frames=TF, num_samples=2, seed=3)
    np.testing.assert_array_equal(
        out, (as_torch[0] * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).numpy()
    )
    np.testing.assert_array_equal(out, predictor.predict(context[-TC:], TF, 2, seed=3))


def test_seeds_decide_the_samples_and_batching_does_not(predictor):
    context = contexts(batch=3)
    first = predictor.predict(context, num_samples=3, seed=0)
    assert torch.equal(first, predictor.predict(context, num_samples=3, seed=0))
    assert not torch.allclose(first, predictor.predict(context, num_samples=3, seed=1))
    assert not torch.allclose(first[:, 0], first[:, 1]), "each sample draws its own latent"
    one_at_a_time = FramePredictor(predictor.generator, batch_size=1)
    assert_close(one_at_a_time.predict(context, num_samples=3, seed=0), first)


def test_roll_out_beyond_the_horizon_slides_the_context_window(predictor):
    context = contexts(batch=2)
    steps = 2 * TF + 1  # three generator calls: TF, TF, then 1 frame
    out = predictor.predict(context, future_frames=steps, num_samples=1, seed=5)
    assert out.shape == (2, 1, steps, 1, 16, 16)
    gen = torch.Generator().manual_seed(5)
    z = [torch.randn(2, LATENT, generator=gen) for _ in range(3)]  # one latent per chunk, drawn in order
    g, window, pieces = predictor.generator, context, []
    for k, count in enumerate((TF, TF, 1)):
        pieces.append(g(window, z[k], future_frames=count))
        window = torch.cat([window, pieces[-1]], dim=1)[:, -TC:]
    assert_close(out[:, 0], torch.cat(pieces, dim=1))
    # A shorter prediction is the start of a longer one with the same seed.
    assert_close(predictor.predict(context, future_frames=TF, seed=5), out[:, :, :TF])


def test_other_sizes_and_rgb_are_resized_and_converted_back(predictor):
    rgb = np.repeat(
        (contexts(batch=1, size=32)[0] * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy(), 3, 3
    )
    out = predictor.predict(rgb, future_frames=2, num_samples=2, seed=0)
    assert out.shape == (2, 2, 32, 32, 3) and out.dtype == np.uint8
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all(), (
        "a grey model predicts grey"
    )
    small = predictor.predict(contexts(batch=1, size=32)[:, :, :, ::2, ::2], future_frames=2, seed=0)
    assert small.shape == (1, 1, 2, 1, 16, 16)


@pytest.mark.parametrize(
    ("context", "kwargs", "error", "match"),
    [
        (np.zeros((2, 16, 16), np.uint8), {}, ValueError, r"uint8 \(T, H, W, C\), got uint8 \(2, 16, 16\)"),
        (np.zeros((2, 16, 16, 1), np.float32), {}, ValueError, r"must be uint8 \(T, H, W, C\), got float32"),
        (np.zeros((2, 16, 12, 1), np.uint8), {}, ValueError, "square frames"),
        (np.zeros((1, 16, 16, 1), np.uint8), {}, ValueError, "T=1 frames; this model needs at least Tc=2"),
        (np.zeros((2, 16, 16, 2), np.uint8), {}, ValueError, r"C=2 x 16x16; expected C in \{1, 3\}"),
        (
            torch.zeros(2, 1, 16, 16),
            {},
            ValueError,
            r"float \(B, T, C, H, W\) in \[0, 1\], got torch.float32",
        ),
        (
            torch.full((1, 2, 1, 16, 16), 255.0),
            {},
            ValueError,
            r"values must be in \[0, 1\], got \[255, 255\]",
        ),
        (torch.zeros(1, 2, 1, 16, 16), {"future_frames": 0}, ValueError, "future_frames=0"),
        (torch.zeros(1, 2, 1, 16, 16), {"labels": [1]}, ValueError, "not class-conditional"),
        ([[0.0]], {}, TypeError, "got list"),
    ],
)
def test_bad_inputs_get_one_clear_message(predictor, context, kwargs, error, match):
    with pytest.raises(error, match=match):
        predictor.predict(context, **kwargs)


def test_other_checkpoints_are_refused_by_name(tmp_path, ckpt):
    t2i = tmp_path / "t2i.ckpt"
    torch.save({"ganforge": {"format_version": 1, "family": "t2i-image"}, "state_dict": {}}, t2i)
    plain = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, plain)
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    cases = [
        (t2i, f"checkpoint '{t2i}' is not a vidgan checkpoint \\(its family is 't2i-image'\\)"),
        (plain, f"checkpoint '{plain}' is not a vidgan checkpoint \\(no 'ganforge' header"),
        (text, f"checkpoint '{text}' is not a readable torch checkpoint \\(neither a zip archive"),
        (tmp_path / "missing.ckpt", "does not exist"),
    ]
    for path, match in cases:
        with pytest.raises(CheckpointError, match=match):
            FramePredictor.from_checkpoint(path)
    foreign = load_checkpoint(ckpt, family="vidgan")
    foreign["hyper_parameters"]["_class_path"] = "mylab.models.Other"
    torch.save(foreign, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="holds a mylab.models.Other; FramePredictor loads VideoGAN"):
        FramePredictor.from_checkpoint(tmp_path / "other.ckpt")


def test_lightning_cli_checkpoints_with_class_path_load(tmp_path, ckpt, predictor):
    saved = load_checkpoint(ckpt, family="vidgan")
    saved["hyper_parameters"] = {
        "_class_path": "vidgan.module.VideoGAN",
        **saved["hyper_parameters"],
        "_instantiator": "pytorch_lightning.cli.instantiate_module",
    }  # what `vidgan fit` (LightningCLI with class_path models) stores
    torch.save(saved, tmp_path / "cli.ckpt")
    context = contexts(batch=2)
    loaded = FramePredictor.from_checkpoint(tmp_path / "cli.ckpt")
    assert torch.equal(loaded.predict(context, seed=2), predictor.predict(context, seed=2))


def test_deterministic_baseline_checkpoint_gives_equal_samples(tmp_path):
    module = ConvGRUBaseline(context_frames=TC, future_frames=TF, resolution=16, g_widths=[8, 8])
    clips = moving_square_clips(4, TC + TF, size=16, seed=1)
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, DataLoader(TensorDataset(clips[:, :TC], clips[:, TC:]), batch_size=4))
    trainer.save_checkpoint(tmp_path / "baseline.ckpt")
    baseline = FramePredictor.from_checkpoint(tmp_path / "baseline.ckpt")
    assert baseline.latent_dim == 0
    out = baseline.predict(contexts(batch=2), future_frames=4, num_samples=3, seed=0)
    assert out.shape == (2, 3, 4, 1, 16, 16)
    assert torch.equal(out[:, 0], out[:, 2])
    assert_close(out[:, 0, :TF], module.eval().predict(contexts(batch=2)))


def test_warp_head_checkpoint_loads_and_rolls_out(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "warp.ckpt", output="warp")
    warp = FramePredictor.from_checkpoint(ckpt, device="cpu")
    assert warp.generator.output == "warp"
    ema = submodule_state(load_checkpoint(ckpt, family="vidgan")["state_dict"], "ema.model")
    assert torch.equal(warp.generator.state_dict()["warp_head.conv.weight"], ema["warp_head.conv.weight"])
    out = warp.predict(contexts(batch=2), future_frames=2 * TF, num_samples=2, seed=0)
    assert out.shape == (2, 2, 2 * TF, 1, 16, 16) and out.min() >= 0 and out.max() <= 1
