"""Baselines for frame prediction: the trivial copy-last and zero frames, and a deterministic ConvGRU.

The ConvGRU encoder-predictor is DVD-GAN-FP's generator with no latent (`latent_dim=0`): the same
context encoder, ConvGRU and up-sampling decoder, trained with MSE only (`vidgan.baseline_module`),
so the GAN-vs-regression comparison changes the objective and nothing else.
"""

from __future__ import annotations

from torch import Tensor

from vidgan.models.generator import VideoGenerator


def copy_last_frame(context: Tensor, future_frames: int) -> Tensor:
    """Repeat the last context frame: context (B, Tc, C, H, W) -> (B, Tf, C, H, W)."""
    return context[:, -1:].expand(-1, future_frames, -1, -1, -1).clone()


def zero_frames(context: Tensor, future_frames: int) -> Tensor:
    """All-black prediction: context (B, Tc, C, H, W) -> zeros (B, Tf, C, H, W)."""
    batch, _, channels, height, width = context.shape
    return context.new_zeros(batch, future_frames, channels, height, width)


class ConvGRUPredictor(VideoGenerator):
    """Deterministic ConvGRU encoder-predictor: `VideoGenerator` with `latent_dim=0` and no classes."""

    def __init__(
        self,
        channels: int = 1,
        resolution: int = 64,
        context_frames: int = 10,
        future_frames: int = 10,
        widths: list[int] | tuple[int, ...] = (128, 64, 32),
        use_sn: bool = False,
        patch_size: int = 1,
        output_margin: float = 0.0,
        output: str = "pixels",
    ) -> None:
        super().__init__(
            channels, resolution, context_frames, future_frames, widths, latent_dim=0, use_sn=use_sn,
            patch_size=patch_size, output_margin=output_margin, output=output,
        )  # fmt: skip
