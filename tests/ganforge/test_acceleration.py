"""The opt-in speed paths (ganforge.acceleration): channels_last, torch.compile, and bf16-mixed fits.

Times with OMP_NUM_THREADS=1 on the loaded 2-core machine: the compile test ~30 s with a warm inductor
cache and ~100 s cold (it builds C++ kernels with g++; marked slow), the two bf16 fits ~5-10 s each,
the first torch.compile import ~10 s, the rest about a second.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from ganforge.acceleration import compile_calls
from t2i.cli import main as t2i_main
from t2i.image_stage import ImageGAN
from vidgan.cli import lightning_main as vidgan_main
from vidgan.data.datamodule import linked_model_args
from vidgan.module import VideoGAN

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
QUIET = [
    "--trainer.logger=false",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]
# Eager vs compiled / channels_last differ only in float summation order.
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def tiny_videogan(**overrides: object) -> VideoGAN:
    """configs/vidgan/moving_mnist_tiny.yaml's networks; frames shortened where a test says so."""
    config = yaml.safe_load((CONFIGS / "vidgan" / "moving_mnist_tiny.yaml").read_text())
    torch.manual_seed(0)
    return VideoGAN(**(config["model"]["init_args"] | linked_model_args(config["data"]) | overrides))


def conv2d_weights(net: nn.Module) -> list[torch.Tensor]:
    return [p for p in net.parameters() if p.dim() == 4]


def run_networks(model: VideoGAN, context, z, video, indices) -> list[torch.Tensor]:
    """G's prediction, D_S's and D_T's logits."""
    spatial, temporal = model.discriminator.spatial, model.discriminator.temporal
    return [model.generator(context, z), spatial(video, indices), temporal(video)]


def test_channels_last_keeps_generator_and_discriminator_outputs() -> None:
    model = tiny_videogan()
    context, target = torch.rand(2, 5, 1, 64, 64), torch.rand(2, 5, 1, 64, 64)
    z, video = torch.randn(2, 16), torch.cat([context, target], dim=1)
    indices = torch.tensor([[0, 3, 5, 9], [1, 2, 6, 8]])
    model.eval()  # spectral norm: no power iteration, so both passes see the same weights
    with torch.no_grad():
        eager = run_networks(model, context, z, video, indices)
        model.channels_last = True
        model.configure_model()
        fast = run_networks(model, context, z, video, indices)
    weights = (
        conv2d_weights(model.generator) + conv2d_weights(model.discriminator) + conv2d_weights(model.ema)
    )
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    for a, b in zip(eager, fast):
        torch.testing.assert_close(b, a, **TOLERANCE)


def test_compile_calls_compiles_the_parts_a_container_calls() -> None:
    model = tiny_videogan()
    compiled = compile_calls(model.generator, model.discriminator, device=torch.device("cpu"))
    assert compiled == ["VideoGenerator", "SpatialDiscriminator", "TemporalDiscriminator"]
    assert model.discriminator.spatial._compiled_call_impl is not None
    assert model.discriminator._compiled_call_impl is None  # VideoDiscriminator has no forward of its own
    assert model.ema.model._compiled_call_impl is None  # inference copy stays eager


def test_compile_calls_leaves_parts_reached_through_other_methods_eager() -> None:
    # t2i's patch and object discriminators have no forward: the step calls their features/logits.
    init_args = yaml.safe_load((CONFIGS / "t2i" / "shapes_image_tiny.yaml").read_text())["model"]["init_args"]
    model = ImageGAN(**(init_args | {"clip_path": None}))
    compiled = compile_calls(model.generator, model.discriminator, device=torch.device("cpu"))
    assert compiled == ["ImageGenerator"]
    assert all(m._compiled_call_impl is None for m in model.discriminator.modules())


def test_compile_on_cpu_without_a_compiler_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(RuntimeError, match="needs a C.. compiler"):
        compile_calls(nn.Linear(2, 2), device=torch.device("cpu"))


@pytest.mark.slow
def test_compiled_tiny_generator_matches_eager() -> None:
    # The tiny config's generator at 2 -> 2 frames: the ConvGRU unrolls over time, so fewer frames
    # keep the one-off kernel build short.
    generator = tiny_videogan(context_frames=2, future_frames=2, spatial_frames=2).generator.eval()
    context, z = torch.rand(2, 2, 1, 64, 64), torch.randn(2, 16)
    with torch.no_grad():
        eager = generator(context, z)
        compile_calls(generator, device=torch.device("cpu"))
        compiled = generator(context, z)
    assert generator._compiled_call_impl is not None
    torch.testing.assert_close(compiled, eager, **TOLERANCE)


def test_vidgan_fit_in_bf16_mixed_with_channels_last(tmp_path: Path) -> None:
    argv = ["fit", "--config", str(CONFIGS / "vidgan" / "moving_mnist_tiny.yaml"), *QUIET,
            "--data.train_sequences", "4", "--data.val_sequences", "2", "--data.batch_size", "2",
            "--trainer.fast_dev_run", "2", "--trainer.precision", "bf16-mixed",
            "--model.init_args.gan.channels_last", "true",
            "--trainer.default_root_dir", str(tmp_path)]  # fmt: skip
    assert vidgan_main(argv) == 0


def test_t2i_image_fit_in_bf16_mixed_with_channels_last(tmp_path: Path) -> None:
    argv = ["fit", "--config", str(CONFIGS / "t2i" / "shapes_image_tiny.yaml"), *QUIET,
            f"--trainer.default_root_dir={tmp_path / 'run'}", "--trainer.max_steps=4",
            "--trainer.precision=bf16-mixed", "--model.init_args.gan.channels_last=true",
            "--model.init_args.clip_path=null", "--model.init_args.text_width=64",
            "--model.init_args.text_layers=1", f"--data.init_args.data_dir={tmp_path / 'shapes'}",
            "--data.init_args.batch_size=4", "--data.init_args.shapes.train=12",
            "--data.init_args.shapes.val=4"]  # fmt: skip
    assert t2i_main(argv) == 0
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
