"""ConvGRUBaseline: the deterministic ConvGRU encoder-predictor trained with a regression loss only.

Same data, trainer, metrics and sample media as `VideoGAN`; select it by config
(`configs/vidgan/moving_mnist_convgru.yaml`). Its network is DVD-GAN-FP's generator without a latent
(`vidgan.models.ConvGRUPredictor`), so the comparison changes the objective and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ganforge.checkpoint import stamp_header
from ganforge.errors import UserError
from vidgan.models import ConvGRUPredictor
from vidgan.module import REC_LOSSES, VideoPredictionModule, unpack


class ConvGRUBaseline(VideoPredictionModule):
    """Regression of future frames (MSE by default, L1, or L1 + MSE) with Adam.

    Args:
        context_frames, future_frames, channels, resolution, g_widths, patch_size, output_margin,
            output: as in `VideoGAN`.
        use_sn: spectral norm on the predictor's layers (off by default: a regression model does not
            need the Lipschitz control that stabilises GAN training).
        loss: "mse" (OpenSTL's objective), "l1" (the median: black until a digit is more likely than
            not) or "l1+mse" (`vidgan.module.l1_plus_mse`, what `moving_mnist_convgru.yaml` uses; see
            docs/vidgan.md).
        lr, betas: Adam settings.
    """

    def __init__(
        self,
        context_frames: int = 10,
        future_frames: int = 10,
        channels: int = 1,
        resolution: int = 64,
        g_widths: list[int] = [64, 32, 16],  # noqa: B006 - plain list so jsonargparse/hparams stay simple
        patch_size: int = 1,
        output_margin: float = 0.0,
        output: str = "pixels",
        use_sn: bool = False,
        loss: str = "mse",
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        if loss not in REC_LOSSES:
            raise UserError(f"loss={loss!r} must be one of {sorted(REC_LOSSES)}")
        super().__init__()
        self.save_hyperparameters()
        self.loss = REC_LOSSES[loss]
        self.generator = self._build_inference_network(locals())

    @staticmethod
    def _build_inference_network(args: Mapping[str, Any]) -> ConvGRUPredictor:
        return ConvGRUPredictor(
            args["channels"], args["resolution"], args["context_frames"], args["future_frames"],
            args["g_widths"], args["use_sn"], args["patch_size"], args["output_margin"], args["output"],
        )  # fmt: skip

    def predict(
        self, context: Tensor, labels: Tensor | None = None, rng: torch.Generator | None = None
    ) -> Tensor:
        """Prediction (B, Tf, C, H, W) in [0, 1] for context (B, Tc, C, H, W); labels, rng unused."""
        with torch.no_grad():
            return self.generator(context)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        context, target, _ = unpack(batch)
        loss = self.loss(self.generator(context), target)
        self.log(f"train/{self.hparams.loss}_loss", loss, batch_size=context.shape[0])
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr, betas=self.hparams.betas)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)  # the generator format
        # The header GANModule writes, so `ganforge.checkpoint.load_checkpoint` accepts it.
        stamp_header(checkpoint, self.family)
