"""A small 3-D conv clip feature extractor trained locally, for the `fd_local` Fréchet distance.

Without the Kinetics I3D there is no FVD. This net stands in for it: it is trained on real clips of
the training set to tell them from the same clips with their frames shuffled, so its features
respond to motion and temporal coherence as well as to appearance. The Fréchet distance in its
feature space is reported as `fd_local`. It is comparable only between runs that use the same
saved net (`vidgan eval --fd-net`), and never with published FVD numbers.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ganforge.errors import UserError
from ganforge.metrics import FeatureNet, load_feature_net, save_feature_net, train_feature_net

FEATURE_SIZE = 32  # clips are resized to 32x32 before the net: enough for Moving MNIST-scale motion
WIDTHS = (16, 32, 64)  # conv widths; the features are the last width, globally average-pooled
FAMILY = "vidgan-fd-local"  # the ganforge header's family of a saved net


class LocalVideoFeatures(FeatureNet):
    """Three strided 3-D convs + global average pooling; clips (B, T, C, H, W) in [0, 1] -> (B, WIDTHS[-1]).

    `head` scores real (positive) vs frame-shuffled (negative) during training only: `logits` -> (B, 1).
    """

    def __init__(self, channels: int, frames: int) -> None:
        super().__init__()
        self.channels, self.frames = channels, frames
        layers: list[nn.Module] = []
        for cin, cout in zip((channels, *WIDTHS[:-1]), WIDTHS):
            layers += [nn.Conv3d(cin, cout, kernel_size=3, stride=(1, 2, 2), padding=1), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(WIDTHS[-1], 1)

    def forward(self, clips: Tensor) -> Tensor:
        """Features (B, D) of clips (B, T, C, H, W) in [0, 1] (any H, W; resized to FEATURE_SIZE)."""
        if clips.dim() != 5 or clips.shape[1] != self.frames or clips.shape[2] != self.channels:
            raise ValueError(
                f"the local feature net takes clips (B, {self.frames}, {self.channels}, H, W), "
                f"got {tuple(clips.shape)}"
            )
        frames = F.interpolate(
            rearrange(clips.float(), "b t c h w -> (b t) c h w"),
            size=(FEATURE_SIZE, FEATURE_SIZE),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        video = rearrange(frames * 2.0 - 1.0, "(b t) c h w -> b c t h w", b=clips.shape[0])
        return self.body(video).mean(dim=(2, 3, 4))


def shuffle_frames(clips: Tensor, rng: torch.Generator) -> Tensor:
    """Each clip (B, T, C, H, W) with its frames in a random order other than the original (T >= 2)."""
    batch, frames = clips.shape[:2]
    order = torch.stack([torch.randperm(frames, generator=rng) for _ in range(batch)])
    identity = torch.arange(frames)
    unchanged = (order == identity).all(dim=1)
    order[unchanged] = identity.roll(1)  # a permutation that moves every frame
    return clips[torch.arange(batch)[:, None], order.to(clips.device)]


def train_local_features(
    clips: Tensor,
    steps: int = 300,
    batch_size: int = 16,
    seed: int = 0,
    lr: float = 1e-3,
    device: str | torch.device = "cpu",
) -> tuple[LocalVideoFeatures, float]:
    """Train a LocalVideoFeatures on real clips (N, T, C, H, W) in [0, 1] vs their frame-shuffled copies.

    A step takes `batch_size` real clips and the same clips shuffled (`ganforge.metrics.train_feature_net`).
    Returns the net (eval mode, on `device`) and its real-vs-shuffled accuracy on the last 64 batches.
    """
    if clips.dim() != 5 or clips.shape[0] < 2 or clips.shape[1] < 2:
        raise UserError(f"fd_local training needs >= 2 clips (N, T >= 2, C, H, W), got {tuple(clips.shape)}")
    labels = torch.cat([torch.ones(batch_size, 1), torch.zeros(batch_size, 1)])

    def real_and_shuffled(index: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        real = clips[index]
        return torch.cat([real, shuffle_frames(real, rng)]), labels

    return train_feature_net(
        lambda: LocalVideoFeatures(clips.shape[2], clips.shape[1]),
        real_and_shuffled,
        clips.shape[0],
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        lr=lr,
        device=device,
    )


def save_local_features(net: LocalVideoFeatures, path: str | Path) -> None:
    """Write the net's weights and shape as a ganforge artefact (loadable with weights_only=True)."""
    save_feature_net(net, path, FAMILY, {"channels": net.channels, "frames": net.frames})


def load_local_features(path: str | Path) -> LocalVideoFeatures:
    """Read a net written by `save_local_features`; CheckpointError naming the file if it is not one.

    Nets saved before the artefact format (a headerless `{"channels", "frames", "state_dict"}`) still load.
    """
    net, _ = load_feature_net(
        path, FAMILY, lambda config: LocalVideoFeatures(config["channels"], config["frames"])
    )
    return net
