"""FramePredictor: a trained vidgan checkpoint as a video frame predictor (docs/python_api.md).

    p = FramePredictor.from_checkpoint("last.ckpt", device="cpu")   # weights_only load, EMA weights
    p.predict(context, future_frames=10, num_samples=4, seed=0)
    # numpy uint8 (T, H, W, C) -> numpy uint8 (S, F, H, W, C)
    # torch float (B, T, C, H, W) in [0, 1] -> torch float (B, S, F, C, H, W) in [0, 1]

Contexts longer than the trained Tc keep their last Tc frames. Frames of another square size are
resized (antialiased bilinear) to the trained resolution and the predictions back; RGB contexts for a
grey model go through luma and come back grey in 3 channels (and grey contexts for an RGB model come
back as luma). Predictions longer than the trained horizon Tf are rolled out autoregressively: every
Tf frames the context window slides onto the newest Tc frames and a new latent is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.checkpoint import load_checkpoint, restore
from ganforge.devices import DEFAULT_DEVICE, resolve_device
from ganforge.errors import CheckpointError, NotGANForgeCheckpointError, UserError, UserTypeError
from vidgan.data.video_folder import LUMA
from vidgan.module import check_generator_format

# LightningModule class -> (module path, state-dict prefix of its inference network).
MODULES = {
    "VideoGAN": ("vidgan.module", "ema.model"),  # DVD-GAN-FP: the EMA generator
    "ConvGRUBaseline": ("vidgan.baseline_module", "generator"),  # deterministic, no EMA
}
DEFAULT_BATCH_SIZE = 64  # clips per generator forward


def _module_class(ckpt: dict[str, Any], path: Path) -> tuple[type, str]:
    """The LightningModule class of a vidgan checkpoint and the prefix of its inference weights."""
    class_path = ckpt.get("hyper_parameters", {}).get("_class_path")  # written by LightningCLI
    if class_path is not None:
        name = str(class_path).rsplit(".", 1)[-1]
    else:
        name = (
            "VideoGAN" if any(k.startswith("ema.model.") for k in ckpt["state_dict"]) else "ConvGRUBaseline"
        )
    if name not in MODULES:
        raise CheckpointError(
            f"checkpoint '{path}' holds a {class_path}; FramePredictor loads {' or '.join(MODULES)}"
        )
    module_path, prefix = MODULES[name]
    return getattr(import_module(module_path), name), prefix


def _to_channels(video: Tensor, channels: int) -> Tensor:
    """(N, T, C, H, W), C in {1, 3} -> (N, T, channels, H, W): RGB -> luma (BT.601), or grey -> 3 copies."""
    have = video.shape[2]
    if have == channels:
        return video
    if have == 3 and channels == 1:
        return torch.einsum("ntchw,c->nthw", video, video.new_tensor(LUMA)).unsqueeze(2)
    return video.expand(-1, -1, channels, -1, -1)


def _resize(video: Tensor, size: int) -> Tensor:
    """(N, T, C, H, W) -> (N, T, C, size, size), antialiased bilinear; unchanged when already that size."""
    if video.shape[-1] == size and video.shape[-2] == size:
        return video
    frames = F.interpolate(
        video.flatten(0, 1), size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return frames.view(*video.shape[:3], size, size).clamp(0.0, 1.0)


class FramePredictor:
    """Predicts future frames with a vidgan generator (the EMA generator of a VideoGAN checkpoint).

    Args:
        generator: a `vidgan.models.VideoGenerator` (or `ConvGRUPredictor`) taking
            (context (B, Tc, C, R, R), z (B, latent_dim) | None, labels | None, future_frames).
        batch_size: clips per generator forward; the result does not depend on it.
    """

    def __init__(self, generator: nn.Module, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if batch_size < 1:
            raise UserError(f"FramePredictor: batch_size={batch_size} must be >= 1")
        self.generator = generator.eval().requires_grad_(False)
        self.batch_size = batch_size

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | torch.device = DEFAULT_DEVICE,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> FramePredictor:
        """Load a `vidgan fit` checkpoint safely (weights_only=True): its config and EMA generator weights.

        `device`: "auto" (the default: cuda when available, else cpu), "cpu", "cuda:1", ...

        Raises CheckpointError naming the file when it is missing, unreadable, or not a vidgan checkpoint.
        """
        path = Path(path)
        try:
            ckpt = load_checkpoint(path, family="vidgan")
        except NotGANForgeCheckpointError:  # a torch file without the ganforge header
            raise CheckpointError(
                f"checkpoint '{path}' is not a vidgan checkpoint (no 'ganforge' header: not written by "
                "`vidgan fit`)"
            ) from None
        check_generator_format(ckpt, path)
        module_class, prefix = _module_class(ckpt, path)
        network = restore(module_class, ckpt, path, prefix=prefix, build=module_class.inference_network)
        return cls(network.to(resolve_device(device)), batch_size)

    # ------------------------------------------------------------------ what the model was trained on
    @property
    def context_frames(self) -> int:
        """Tc, the context length the generator was trained with."""
        return self.generator.context_frames

    @property
    def future_frames(self) -> int:
        """Tf, the trained horizon; longer predictions are rolled out."""
        return self.generator.future_frames

    @property
    def channels(self) -> int:
        return self.generator.channels

    @property
    def resolution(self) -> int:
        """R: the generator's frames are R x R."""
        return self.generator.resolution

    @property
    def latent_dim(self) -> int:
        """Size of z; 0 for a deterministic model (all samples then agree)."""
        return self.generator.latent_dim

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    # ------------------------------------------------------------------ prediction
    def predict(
        self,
        context: np.ndarray | Tensor,
        future_frames: int | None = None,
        num_samples: int = 1,
        seed: int = 0,
        labels: int | Sequence[int] | Tensor | None = None,
    ) -> np.ndarray | Tensor:
        """Predict `future_frames` frames after `context`, `num_samples` times.

        Args:
            context: numpy uint8 (T, H, W, C), or torch float (B, T, C, H, W) in [0, 1]; T >= Tc
                (the last Tc frames are used), H = W, C in {1, 3}.
            future_frames: F (default: the trained horizon Tf; more is rolled out).
            num_samples: S; each sample draws its own latents.
            seed: the latents are drawn from a generator seeded with it: equal calls give equal results.
            labels: class ids (B,) (an int for numpy) for a class-conditional model.

        Returns:
            numpy uint8 (S, F, H, W, C) for numpy input; torch float (B, S, F, C, H, W) in [0, 1] on the
            context's device for torch input.
        """
        if isinstance(context, np.ndarray):
            if context.dtype != np.uint8 or context.ndim != 4:
                raise UserError(
                    f"numpy context must be uint8 (T, H, W, C), got {context.dtype} {tuple(context.shape)}"
                )
            video = torch.from_numpy(np.ascontiguousarray(context)).permute(0, 3, 1, 2)[
                None
            ]  # (1, T, C, H, W)
            label_list = None if labels is None else [labels] if isinstance(labels, int) else labels
            out = self._predict(video.float().div_(255.0), future_frames, num_samples, seed, label_list)
            return (out[0] * 255.0).round_().to(torch.uint8).permute(0, 1, 3, 4, 2).cpu().numpy()
        if isinstance(context, Tensor):
            if context.dim() != 5 or not context.is_floating_point():
                raise UserError(
                    f"torch context must be float (B, T, C, H, W) in [0, 1], got {context.dtype} "
                    f"{tuple(context.shape)}"
                )
            low, high = torch.aminmax(context)
            if low < 0 or high > 1:
                raise UserError(f"torch context values must be in [0, 1], got [{low:.3g}, {high:.3g}]")
            return self._predict(context, future_frames, num_samples, seed, labels).to(context.device)
        raise UserTypeError(
            f"context must be a numpy uint8 (T, H, W, C) array or a torch float (B, T, C, H, W) tensor, "
            f"got {type(context).__name__}"
        )

    @torch.no_grad()
    def _predict(
        self, video: Tensor, future_frames: int | None, samples: int, seed: int, labels: Any
    ) -> Tensor:
        """video (B, T, C, H, W) float in [0, 1] -> (B, S, F, C, H, W) float in [0, 1]."""
        steps = self.future_frames if future_frames is None else future_frames
        batch, frames, channels, height, width = video.shape
        tc, size = self.context_frames, self.resolution
        if steps < 1 or samples < 1:
            raise UserError(f"future_frames={steps} and num_samples={samples} must be >= 1")
        if frames < tc:
            raise UserError(f"context has T={frames} frames; this model needs at least Tc={tc}")
        if channels not in (1, 3) or height != width:
            raise UserError(
                f"context frames are C={channels} x {height}x{width}; expected C in {{1, 3}} and square "
                f"frames (the model predicts {self.channels} x {size}x{size}; crop to a square first)"
            )
        label_ids = self._labels(labels, batch)
        x = _resize(_to_channels(video[:, -tc:].to(self.device, torch.float32), self.channels), size)
        # A deterministic model gives every sample the same frames: predict once, then repeat.
        drawn = samples if self.latent_dim > 0 else 1
        z = self._latents(batch, drawn, steps, seed)  # (B * drawn, chunks, latent_dim) or None
        rows = torch.arange(batch * drawn, device=self.device)
        out = torch.empty(batch * drawn, steps, channels, height, width, device=self.device)
        for start in range(0, rows.numel(), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            source = chunk // drawn  # the context of each (sequence, sample) row
            pred = self._roll_out(
                x[source],
                None if z is None else z[start : start + chunk.numel()],
                None if label_ids is None else label_ids[source],
                steps,
            )
            out[start : start + chunk.numel()] = _to_channels(_resize(pred, height), channels)
        out = out.view(batch, drawn, steps, channels, height, width)
        return out.expand(-1, samples, -1, -1, -1, -1) if drawn < samples else out

    def _roll_out(self, context: Tensor, z: Tensor | None, labels: Tensor | None, steps: int) -> Tensor:
        """(N, Tc, C, R, R) -> (N, steps, C, R, R): Tf frames per generator call, the context sliding."""
        chunks, done = [], 0
        while done < steps:
            count = min(self.future_frames, steps - done)
            latent = None if z is None else z[:, len(chunks)]
            pred = self.generator(context, latent, labels, future_frames=count)
            chunks.append(pred)
            done += count
            if done < steps:
                context = torch.cat([context, pred], dim=1)[:, -self.context_frames :]
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=1)

    def _latents(self, batch: int, samples: int, steps: int, seed: int) -> Tensor | None:
        """z (batch * samples, chunks, latent_dim) from a CPU generator seeded with `seed`, or None.

        Chunk k's latents are drawn k-th, so a longer roll-out keeps the frames of a shorter one.
        """
        if self.latent_dim == 0:
            return None
        rng = torch.Generator().manual_seed(seed)
        chunks = math.ceil(steps / self.future_frames)
        z = [torch.randn(batch * samples, self.latent_dim, generator=rng) for _ in range(chunks)]
        return torch.stack(z, dim=1).to(self.device)

    def _labels(self, labels: Any, batch: int) -> Tensor | None:
        """Class ids (B,) long on the device, checked against the model's classes."""
        classes = getattr(self.generator, "num_classes", 0)
        if classes == 0:
            if labels is not None:
                raise UserError("labels were given but this model is not class-conditional")
            return None
        if labels is None:
            raise UserError(f"this model is class-conditional ({classes} classes): pass labels=")
        ids = torch.as_tensor(labels, dtype=torch.long).reshape(-1).to(self.device)
        if ids.numel() != batch or ids.min() < 0 or ids.max() >= classes:
            raise UserError(f"labels must be {batch} class ids in [0, {classes}), got {ids.tolist()}")
        return ids
