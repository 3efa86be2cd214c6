"""VideoGAN: DVD-GAN-FP frame prediction (Clark et al. 2019) on the ganforge GAN core.

Batches are `(context, target)` or `(context, target, labels)`: context (B, Tc, C, H, W) and target
(B, Tf, C, H, W) float in [0, 1], labels (B,) long. Both discriminators see context + future
frames together, so they judge continuity. `vidgan fit --config configs/vidgan/moving_mnist.yaml`
trains it; `vidgan.baseline_module.ConvGRUBaseline` is the MSE-trained deterministic baseline that
shares the validation metrics and sample media defined here.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils import parametrize

from ganforge.errors import CheckpointError, UserError
from ganforge.media import VideoMedia
from ganforge.module import GANModule
from ganforge.options import GANOptions
from vidgan.metrics import frame_metrics
from vidgan.models import VideoDiscriminator, VideoGenerator, sample_frame_indices
from vidgan.models.generator import GENERATOR_FORMAT


def l1_plus_mse(pred: Tensor, target: Tensor) -> Tensor:
    """L1 + MSE of pred and target (any equal shapes), the objective E3D-LSTM trains with (its squared term
    is halved). Per pixel its minimiser soft-thresholds MSE's conditional mean: a pixel lit in under a
    quarter of the plausible futures stays exactly black, where MSE alone greys it."""
    return F.l1_loss(pred, target) + F.mse_loss(pred, target)


REC_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss, "l1+mse": l1_plus_mse}
SAMPLE_CLIPS = 4  # clips per logged sample video
GENERATOR_FORMAT_KEY = "vidgan_generator_format"  # checkpoint key; absent before format 2
GENERATOR_FORMATS = {
    1: "a single ConvGRU at the lowest resolution",
    2: "a ConvGRU and two residual blocks per resolution",
}


class GeneratorFormatError(CheckpointError):
    """A vidgan checkpoint whose generator was built by another network format than this vidgan's."""


def check_generator_format(checkpoint: Mapping[str, Any], path: Any) -> None:
    """Raise GeneratorFormatError naming `path` unless `checkpoint` holds this vidgan's generator format.

    Checkpoints written before the per-resolution generator carry no format key: format 1. Their
    weights have other names and shapes, so they are refused instead of loaded into the wrong layers.
    """
    found = checkpoint.get(GENERATOR_FORMAT_KEY, 1)
    if found != GENERATOR_FORMAT:
        what = GENERATOR_FORMATS.get(found, "unknown to this vidgan")
        raise GeneratorFormatError(
            f"checkpoint '{path}' holds a vidgan generator of format {found} ({what}); this vidgan "
            f"reads format {GENERATOR_FORMAT} ({GENERATOR_FORMATS[GENERATOR_FORMAT]}) and cannot "
            "convert it: retrain the model"
        )


def unpack(batch: Any) -> tuple[Tensor, Tensor, Tensor | None]:
    """(context, target[, labels]) -> (context, target, labels or None)."""
    if not isinstance(batch, (list, tuple)) or len(batch) not in (2, 3):
        raise ValueError(f"a vidgan batch must be (context, target[, labels]), got {type(batch).__name__}")
    return batch[0], batch[1], batch[2] if len(batch) == 3 else None


def comparison_video(context: Tensor, pred: Tensor, target: Tensor) -> Tensor:
    """Side-by-side clips uint8 (N, Tc + Tf, C, H, 3W): context held | context, prediction | context, truth.

    All three panels play the context first; afterwards the left panel holds the last context
    frame (what copy-last predicts), the middle one plays the prediction, the right one the truth.
    """
    held = context[:, -1:].expand_as(pred)
    panels = [torch.cat([context, part], dim=1) for part in (held, pred, target)]
    clips = torch.cat(panels, dim=-1)
    return (clips.clamp(0, 1) * 255).round().to(torch.uint8)


class VideoPredictionModule(pl.LightningModule):
    """Base of every vidgan LightningModule (the class `vidgan fit` configs choose from by class_path).

    Gives validation metrics and sample media; subclasses implement
    `predict(context, labels, rng) -> (B, Tf, C, H, W)` with their inference network
    (VideoGAN: the EMA generator).
    """

    family = "vidgan"

    @classmethod
    def inference_network(cls, **hparams: Any) -> torch.nn.Module:
        """The network `predict` runs, alone, as `cls(**hparams)` would build it (defaults filled in).

        FramePredictor loads a checkpoint's inference weights into it without building the rest of the
        module (VideoGAN: no discriminators and no second generator copy). TypeError on unknown hparams.
        """
        arguments = inspect.signature(cls).bind(**hparams)
        arguments.apply_defaults()
        return cls._build_inference_network(arguments.arguments)

    @staticmethod
    def _build_inference_network(args: Mapping[str, Any]) -> torch.nn.Module:
        """The inference network from the full constructor arguments (names as in `__init__`)."""
        raise NotImplementedError

    def predict(self, context: Tensor, labels: Tensor | None, rng: torch.Generator | None) -> Tensor:
        """Predicted future frames (B, Tf, C, H, W) in [0, 1] for context (B, Tc, C, H, W)."""
        raise NotImplementedError

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint[GENERATOR_FORMAT_KEY] = GENERATOR_FORMAT

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning calls this before loading the weights (resume with --ckpt_path, load_from_checkpoint).
        path = self._trainer.ckpt_path if self._trainer is not None else "(given state)"
        check_generator_format(checkpoint, path)
        super().on_load_checkpoint(checkpoint)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Logs `val/mse`, `val/mae`, `val/ssim`, `val/psnr` of predictions vs truth (`vidgan.metrics`)."""
        context, target, labels = unpack(batch)
        # A seed per batch index: every validation pass scores the same latents.
        pred = self.predict(context, labels, torch.Generator().manual_seed(batch_idx))
        metrics = {f"val/{k}": v.mean() for k, v in frame_metrics(pred, target).items()}
        self.log_dict(metrics, on_epoch=True, batch_size=context.shape[0], sync_dist=True)

    @torch.no_grad()
    def sample(self, batch: Any, rng: torch.Generator | None = None) -> dict[str, VideoMedia]:
        """{"video": context | prediction | truth clips of the first batch items}; see `comparison_video`."""
        context, target, labels = unpack(batch)
        context, target = context[:SAMPLE_CLIPS], target[:SAMPLE_CLIPS]
        labels = None if labels is None else labels[:SAMPLE_CLIPS]
        pred = self.predict(context, labels, rng)
        return {"video": VideoMedia(comparison_video(context, pred, target).cpu())}


class VideoGAN(VideoPredictionModule, GANModule):
    """DVD-GAN-FP: ConvGRU generator, spatial + temporal discriminators, hinge loss, 2 D steps per G step.

    Args:
        context_frames, future_frames: Tc -> Tf.
        channels, resolution: C and H = W of the frames.
        g_widths: generator widths from the ConvGRU resolution up to full resolution
            (len - 1 up-sampling blocks; see `VideoGenerator`).
        latent_dim: size of z (120 in DVD-GAN); each sample draws a new z.
        num_classes: > 0 makes G and both Ds class-conditional (batches then carry labels).
        d_widths: widths of both discriminators' residual blocks (D_T's first two are 3-D).
        spatial_frames: k, the distinct frames D_S scores per clip (8 in DVD-GAN).
        temporal_pool: D_T's spatial average pooling, 1, 2 (DVD-GAN) or 4.
        patch_size: 1 (DVD-GAN), or p: G, D_S and D_T take lossless p x p patches (space-to-depth),
            which makes CPU training several times faster (see `VideoGenerator`).
        output_margin: m > 0 lets G reach pure black and white at finite pre-activations
            (clamp(0.5 + (0.5 + m) tanh(x), 0, 1); see `VideoGenerator`); 0 is DVD-GAN's tanh.
        output: "pixels" (DVD-GAN) or "warp": each predicted frame is the previous one warped by a
            predicted flow and blended with the drawn frame (`vidgan.models.warp`).
        lambda_rec: weight of the reconstruction term `rec_loss(pred, target)` added to G's loss
            (0 in the paper configs; SAVP/SimVP-style mixing when > 0).
        rec_loss: "l1", "mse" or "l1+mse" (`l1_plus_mse`).
        frame_seed: seed of the generator that draws D_S's frame indices (offset by the rank).
        gan: the core options (`GANOptions`: loss, learning rates, EMA, clipping, ...); by default
            the core's with DVD-GAN's 2 D steps per G step.
    """

    def __init__(
        self,
        context_frames: int = 10,
        future_frames: int = 10,
        channels: int = 1,
        resolution: int = 64,
        g_widths: list[int] = [64, 32, 16],  # noqa: B006 - plain list so jsonargparse/hparams stay simple
        latent_dim: int = 120,
        num_classes: int = 0,
        d_widths: list[int] = [16, 32, 64, 64],  # noqa: B006
        spatial_frames: int = 8,
        temporal_pool: int = 2,
        patch_size: int = 1,
        output_margin: float = 0.0,
        output: str = "pixels",
        lambda_rec: float = 0.0,
        rec_loss: str = "l1",
        frame_seed: int = 0,
        gan: GANOptions = GANOptions(d_steps_per_g_step=2),
    ) -> None:
        if rec_loss not in REC_LOSSES:
            raise UserError(f"rec_loss={rec_loss!r} must be one of {sorted(REC_LOSSES)}")
        if lambda_rec < 0:
            raise UserError(f"lambda_rec={lambda_rec} must be >= 0")
        if latent_dim < 1:
            raise UserError(
                f"latent_dim={latent_dim} must be >= 1 (ConvGRUBaseline is the deterministic model)"
            )
        generator = self._build_inference_network(locals())
        discriminator = VideoDiscriminator(
            channels, d_widths, spatial_frames, temporal_pool, num_classes, patch_size=patch_size
        )
        discriminator.check_resolution(resolution)
        super().__init__(generator, discriminator, gan)
        self.save_hyperparameters()
        self.lambda_rec, self.rec_loss = lambda_rec, REC_LOSSES[rec_loss]
        self.frame_seed = frame_seed
        self.frame_rng = torch.Generator().manual_seed(frame_seed)

    @staticmethod
    def _build_inference_network(args: Mapping[str, Any]) -> VideoGenerator:
        """G (the EMA copy has the same architecture)."""
        return VideoGenerator(
            args["channels"], args["resolution"], args["context_frames"], args["future_frames"],
            args["g_widths"], args["latent_dim"], args["num_classes"],
            patch_size=args["patch_size"], output_margin=args["output_margin"], output=args["output"],
        )  # fmt: skip

    def on_fit_start(self) -> None:
        super().on_fit_start()  # GANModule: the global RNGs get seed + rank under DDP
        # Each DDP rank draws its own frame subsets, on the training device: no host-to-device copy.
        self.frame_rng = torch.Generator(device=self.device).manual_seed(
            self.frame_seed * 1009 + self.global_rank
        )

    # ------------------------------------------------------------------ pieces
    def frame_indices(self, batch: int, frames: int) -> Tensor:
        """D_S's k distinct frame indices per clip (batch, min(k, frames)), from `frame_rng`."""
        return sample_frame_indices(batch, frames, self.discriminator.spatial.k, self.frame_rng, self.device)

    def predict(
        self, context: Tensor, labels: Tensor | None = None, rng: torch.Generator | None = None
    ) -> Tensor:
        """EMA-generator prediction (B, Tf, C, H, W) in [0, 1] for context (B, Tc, C, H, W); a new z each."""
        with torch.no_grad():
            return self.ema.model(context, self.noise(len(context), self.hparams.latent_dim, rng=rng), labels)

    # ------------------------------------------------------------------ GANModule interface
    def discriminator_loss(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """Hinge (or configured) loss of D_S plus D_T on real vs predicted clips, context included."""
        context, target, labels = unpack(batch)
        with torch.no_grad():
            pred = self.generator(context, self.noise(len(context), self.hparams.latent_dim), labels)
        real, fake = torch.cat([context, target], dim=1), torch.cat([context, pred], dim=1)
        indices = self.frame_indices(real.shape[0], real.shape[1])
        spatial, temporal = self.discriminator.spatial, self.discriminator.temporal
        # D's spectrally normalised weights once per D step (one power iteration), shared by the
        # real and the fake pass, as one forward on both would
        with parametrize.cached():
            ds_loss, ds_logs = self.adversarial_d_loss(lambda v: spatial(v, indices, labels), real, fake)
            dt_loss, dt_logs = self.adversarial_d_loss(lambda v: temporal(v, labels), real, fake)
        logs = {f"ds_{k}": v for k, v in ds_logs.items()} | {f"dt_{k}": v for k, v in dt_logs.items()}
        return ds_loss + dt_loss, logs

    def generator_loss(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """-E[D_S] - E[D_T] on predicted clips (+ lambda_rec * reconstruction)."""
        context, target, labels = unpack(batch)
        pred = self.generator(context, self.noise(len(context), self.hparams.latent_dim), labels)
        fake = torch.cat([context, pred], dim=1)
        indices = self.frame_indices(fake.shape[0], fake.shape[1])
        g_spatial = self.g_adversarial(self.discriminator.spatial(fake, indices, labels))
        g_temporal = self.g_adversarial(self.discriminator.temporal(fake, labels))
        rec = self.rec_loss(pred, target)
        loss = g_spatial + g_temporal
        if self.lambda_rec > 0:
            loss = loss + self.lambda_rec * rec
        return loss, {"g_spatial": g_spatial.detach(), "g_temporal": g_temporal.detach(), "rec": rec.detach()}

    def batch_size(self, batch: Any) -> int:
        return int(unpack(batch)[0].shape[0])
