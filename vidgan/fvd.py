"""Fréchet video distance (Unterthiner et al. 2018) over any clip feature extractor, and the local I3D loader.

FVD is the Fréchet distance between Gaussians fitted to I3D features of real and generated clips:
||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)). The distance itself is torchmetrics' FID
implementation (`_compute_fid`), in float64. Only features of the Kinetics-400 I3D make the number
FVD; `vidgan.local_features` provides a locally trained extractor whose distance is reported as
`fd_local`, never as FVD.

The I3D is the StyleGAN-V TorchScript export (`i3d_torchscript.pt`, Skorokhodov et al. 2022), which
reproduces the TF-Hub model of the original FVD code. Its call convention, as StyleGAN-V's
`metrics/frechet_video_distance.py` uses it: uint8 clips (B, 3, T, H, W) in [0, 255], grey repeated
to 3 channels, `detector(x, rescale=True, resize=True, return_features=True)` -> (B, 400) features
(rescale maps to [-1, 1], resize to 224x224 inside the model).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from einops import rearrange
from torch import Tensor
from torchmetrics.image.fid import _compute_fid

FeatureExtractor = Callable[[Tensor], Tensor]  # clips (B, T, C, H, W) in [0, 1] -> features (B, D)
I3D_KWARGS = {"rescale": True, "resize": True, "return_features": True}  # StyleGAN-V's FVD settings


def gaussian_stats(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64 (np.cov's convention)."""
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"Fréchet distance needs features (N >= 2, D), got {tuple(features.shape)}")
    features = features.double()
    return features.mean(dim=0), torch.cov(features.T).reshape(features.shape[1], features.shape[1])


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)) (torchmetrics' FID formula)."""
    return float(_compute_fid(mu1.double(), sigma1.double(), mu2.double(), sigma2.double()))


class FrechetVideoDistance:
    """Fréchet distance between the features of real and generated clips, under any feature extractor.

    `update(clips, real=...)` with clips (B, T, C, H, W) float in [0, 1]; `compute()` after both sets
    have at least two clips. Name the result after the extractor: "fvd" only for the I3D.
    """

    def __init__(self, extractor: FeatureExtractor) -> None:
        self.extractor = extractor
        self.features: dict[bool, list[Tensor]] = {True: [], False: []}

    @torch.no_grad()
    def update(self, clips: Tensor, real: bool) -> None:
        """Extract and keep features of clips (B, T, C, H, W) in [0, 1]."""
        features = self.extractor(clips)
        if features.dim() != 2 or features.shape[0] != clips.shape[0]:
            raise ValueError(
                f"the feature extractor returned {tuple(features.shape)} for {clips.shape[0]} clips, "
                "expected (B, D)"
            )
        self.features[real].append(features.detach().double().cpu())

    def counts(self) -> tuple[int, int]:
        """(real clips, generated clips) seen so far."""
        return tuple(sum(f.shape[0] for f in self.features[real]) for real in (True, False))

    def compute(self) -> float:
        """The Fréchet distance between the real and generated feature Gaussians."""
        real, fake = self.counts()
        if real < 2 or fake < 2:
            raise ValueError(f"Fréchet distance needs >= 2 real and generated clips, got {real} and {fake}")
        mu_r, sigma_r = gaussian_stats(torch.cat(self.features[True]))
        mu_g, sigma_g = gaussian_stats(torch.cat(self.features[False]))
        return frechet_distance(mu_g, sigma_g, mu_r, sigma_r)


class I3DFeatures:
    """The StyleGAN-V I3D TorchScript (`i3d_torchscript.pt`) as a FeatureExtractor, loaded from a local file.

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
            raise ValueError(f"I3D file '{self.path}' is not a TorchScript module ({first})") from None

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
            raise ValueError(
                f"I3D '{self.path}' failed on clips {tuple(video.shape)} (B, 3, T, H, W): "
                f"{lines[-1] if lines else type(err).__name__}"
            ) from None
