"""Fréchet video distance (Unterthiner et al. 2018): the local I3D feature extractor.

FVD is the Fréchet distance between Gaussians fitted to I3D features of real and generated clips,
computed by `ganforge.metrics` (`FrechetDistance`, torch-fidelity's formula in float64). Only features
of the Kinetics-400 I3D make the number FVD; `vidgan.local_features` provides a locally trained
extractor whose distance is reported as `fd_local`, never as FVD.

The I3D is the StyleGAN-V TorchScript export (`i3d_torchscript.pt`, Skorokhodov et al. 2022), which
reproduces the TF-Hub model of the original FVD code. Its call convention, as StyleGAN-V's
`metrics/frechet_video_distance.py` uses it: uint8 clips (B, 3, T, H, W) in [0, 255], grey repeated
to 3 channels, `detector(x, rescale=True, resize=True, return_features=True)` -> (B, 400) features
(rescale maps to [-1, 1], resize to 224x224 inside the model).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from einops import rearrange
from torch import Tensor

from ganforge.errors import UserError

I3D_KWARGS = {"rescale": True, "resize": True, "return_features": True}  # StyleGAN-V's FVD settings

# The core accumulator, by the name `vidgan eval` imports: update(clips (B, T, C, H, W) in [0, 1], real).


class I3DFeatures:
    """The StyleGAN-V I3D TorchScript (`i3d_torchscript.pt`), from a local file, as a clip feature extractor.

    Clips (B, T, C, H, W) float in [0, 1], C in {1, 3} -> features (B, 400). Nothing is downloaded.
    """

    def __init__(self, path: str | Path, device: str | torch.device = "cpu") -> None:
        self.path, self.device = Path(path), torch.device(device)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"I3D file '{self.path}' does not exist (the StyleGAN-V i3d_torchscript.pt)"
            )
        try:
            with warnings.catch_warnings():  # the file's format is TorchScript, deprecated or not
                warnings.filterwarnings(
                    "ignore", message=".*torch.jit.load.*deprecated", category=FutureWarning
                )
                self.model = torch.jit.load(str(self.path), map_location=self.device).eval()
        except (RuntimeError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"I3D file '{self.path}' is not a TorchScript module ({first})") from None

    @torch.no_grad()
    def __call__(self, clips: Tensor) -> Tensor:
        if clips.dim() != 5 or clips.shape[2] not in (1, 3):
            raise ValueError(f"I3D takes clips (B, T, C in {{1, 3}}, H, W), got {tuple(clips.shape)}")
        video = (clips.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, -1, 3, -1, -1)
        video = rearrange(video, "b t c h w -> b c t h w").contiguous().to(self.device)
        try:
            return self.model(video, **I3D_KWARGS).float()
        except RuntimeError as err:  # TorchScript errors are long interpreter traces
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            raise UserError(
                f"I3D '{self.path}' failed on clips {tuple(video.shape)} (B, 3, T, H, W): "
                f"{lines[-1] if lines else type(err).__name__}"
            ) from None
