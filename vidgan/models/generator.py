"""DVD-GAN-FP generator (Clark, Donahue, Simonyan 2019), recurrent at every resolution.

See docs/vidgan_model.md for the paper facts this follows. With n = len(widths) groups:

    context frames --2-D ResNet per frame--> features at every resolution
        --concat over context frames on channels, conv3x3 + ReLU--> one initial state per group
    z (+ class embedding) --linear--> 4x4 map = the first group's ConvGRU input at every step;
        z also conditions every batch norm
    group i: ConvGRU unrolled over the predicted frames (initial state from the context at its
        resolution, input = the previous group's output frames), then two residual blocks per
        frame (time folded into batch, per-frame batch-norm statistics); group 0 keeps the
        resolution, every later group doubles H and W in its second block
    --> bn, relu, conv3x3 --> tanh (with an optional margin, clamped) --> frames;
    with `output="warp"` a second head adds a flow and a blend mask per frame, and each frame becomes
    the previous one warped by its flow, blended with the pixel head's frame (`vidgan.models.warp`).

So the ConvGRUs run at s, s, 2s, ..., R/2 (s = the lowest resolution, R the network's full
resolution) and the context reaches G at every one of them. Videos cross the module boundary as
(B, T, C, H, W) in [0, 1]; inside they live in [-1, 1]. With `latent_dim=0` the same network is
deterministic: the first ConvGRU has no input and batch norm is unconditional; that is the
MSE-trained ConvGRU baseline (`vidgan.models.baselines`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ganforge.errors import UserError
from vidgan.models.blocks import DBlock, FrameBatchNorm, GBlock
from vidgan.models.convgru import ConvGRU
from vidgan.models.layers import conv2d, depth_to_space, embedding, linear, space_to_depth
from vidgan.models.warp import WarpHead, warp_roll_out

Z_MAP_SIZE = 4  # DVD-GAN maps the latent to a 4x4 feature map
# Checkpoint format of this network's weights. 1: a single ConvGRU at the lowest resolution followed
# by up-sampling blocks (before the per-resolution groups); 2: a ConvGRU + two residual blocks per
# resolution. `vidgan.checkpoint_format` refuses checkpoints of another format.
GENERATOR_FORMAT = 2
OUTPUTS = ("pixels", "warp")


def check_video(name: str, video: Tensor, channels: int, size: int, frames: int | None = None) -> None:
    """Raise UserError unless `video` is (B, T, channels, size, size) (with T == frames when given)."""
    ok = video.dim() == 5 and tuple(video.shape[2:]) == (channels, size, size)
    if not ok or (frames is not None and video.shape[1] != frames):
        t = frames if frames is not None else "T"
        raise UserError(f"{name} must be (B, {t}, {channels}, {size}, {size}), got {tuple(video.shape)}")


class ContextEncoder(nn.Module):
    """Context frames -> the initial ConvGRU state of every generator group.

    A 2-D ResNet (D blocks, each halving H and W) runs on each context frame; its features at each
    group's resolution are concatenated over the Tc frames on channels and reduced by conv3x3 +
    ReLU to the group's width. `widths` are the generator's group widths, lowest resolution first;
    the down-sampling blocks mirror them (the block whose output feeds group i has width widths[i],
    group 0 shares the lowest-resolution block with group 1).

    (B, Tc, C, R, R) in [-1, 1] -> [(B, widths[i], r_i, r_i)], r_0 = R / 2^(n-1), r_i = R / 2^(n-i).
    """

    def __init__(self, channels: int, widths: list[int], context_frames: int, use_sn: bool = True) -> None:
        super().__init__()
        n = len(widths)
        block_widths = widths[:0:-1]  # block j outputs R / 2^(j+1) with width widths[n-1-j]
        ins = [channels, *block_widths[:-1]]
        self.blocks = nn.ModuleList(
            DBlock(cin, cout, preactivation=j > 0, use_sn=use_sn)
            for j, (cin, cout) in enumerate(zip(ins, block_widths))
        )
        self.sources = [n - 2] + [n - 1 - i for i in range(1, n)]  # the block feeding each group
        self.reduce = nn.ModuleList(
            conv2d(context_frames * block_widths[j], width, use_sn=use_sn)
            for j, width in zip(self.sources, widths)
        )

    def forward(self, context: Tensor) -> list[Tensor]:
        x = rearrange(context, "b t c h w -> (b t) c h w")
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(F.relu(x))
        return [
            F.relu(reduce(rearrange(features[j], "(b t) c h w -> b (t c) h w", b=context.shape[0])))
            for j, reduce in zip(self.sources, self.reduce)
        ]


class GeneratorGroup(nn.Module):
    """One DVD-GAN generator group: a ConvGRU unrolled over the frames, then two residual blocks.

    (B, C_in, r, r) or (B, T, C_in, r, r) input (or None), initial state (B, width, r, r)
    -> (B, T, width, 2r, 2r) when `upsample`, else (B, T, width, r, r).
    """

    def __init__(
        self, input_channels: int, width: int, frames: int, cond_dim: int, use_sn: bool, upsample: bool
    ) -> None:
        super().__init__()
        self.gru = ConvGRU(input_channels, width, use_sn=use_sn)
        self.blocks = nn.ModuleList(
            [
                GBlock(width, width, frames, cond_dim, use_sn, upsample=False),
                GBlock(width, width, frames, cond_dim, use_sn, upsample=upsample),
            ]
        )

    def forward(self, h0: Tensor, steps: int, x: Tensor | None, cond: Tensor | None) -> Tensor:
        h = self.gru(h0, steps, x)
        for block in self.blocks:
            h = block(h, cond)
        return h


class VideoGenerator(nn.Module):
    """G(context, z) -> future frames.

    Args:
        channels: image channels C.
        resolution: frame size H = W (a multiple of patch_size * 2^(len(widths) - 1)).
        context_frames: Tc, fixed by the encoder's reductions.
        future_frames: default number of frames to predict, and the number of frames whose batch-norm
            running statistics are kept (forward can ask for another count; later frames reuse the
            last frame's statistics).
        widths: one generator group per entry, lowest resolution first. Group 0 keeps the
            resolution, each later group doubles it, so the first ConvGRU runs at
            resolution / (patch_size * 2^(len(widths) - 1)) and the output of the last group is at
            resolution / patch_size. The context encoder mirrors the widths (see `ContextEncoder`).
        latent_dim: size of z; 0 makes the network deterministic (no z, unconditional BN).
        num_classes: > 0 adds a class embedding joined to z (class-conditional G).
        use_sn: spectral norm on every convolution (G's convolutions, as in DVD-GAN). The latent and
            class paths (z -> map linear, conditional-BN linears, class embedding) stay plain so G
            can scale the noise it injects; under spectral norm their largest singular value would
            be pinned to 1 and a unit-scale z perturbation could never be learned away.
        patch_size: 1 (DVD-GAN) or p > 1: frames enter as lossless p x p patches (space-to-depth,
            as DGMR and OpenSTL do) and leave through the inverse, so the network runs at
            resolution / p with C*p*p channels. On CPU this avoids slow 1- and 3-channel convs at
            full resolution.
        output_margin: m >= 0: frames are clamp(0.5 + (0.5 + m) tanh(x), 0, 1), so pure black and
            white are reached at finite x. With m = 0 (plain tanh) a black background stays a
            faint haze for long, and SSIM on mostly-black frames (Moving MNIST) punishes that haze
            hard: at a mean of 0.01 against 0 its luminance term is already down to 0.5.
        output: "pixels" (DVD-GAN: G draws every frame) or "warp": each frame is the previous frame
            (the last context frame first) warped by a predicted flow and blended with the drawn
            frame by a predicted mask (`vidgan.models.warp`; DVF's and SAVP's composite). A new
            warp generator predicts copy-last; digits stay sharp while it learns to move them.
    """

    format_version = GENERATOR_FORMAT

    def __init__(
        self,
        channels: int = 1,
        resolution: int = 64,
        context_frames: int = 10,
        future_frames: int = 10,
        widths: list[int] | tuple[int, ...] = (128, 64, 32),
        latent_dim: int = 120,
        num_classes: int = 0,
        use_sn: bool = True,
        patch_size: int = 1,
        output_margin: float = 0.0,
        output: str = "pixels",
    ) -> None:
        super().__init__()
        widths = list(widths)
        if output not in OUTPUTS:
            raise UserError(f"output={output!r} must be one of {sorted(OUTPUTS)}")
        if output_margin < 0:
            raise UserError(f"output_margin={output_margin} must be >= 0")
        if len(widths) < 2:
            raise UserError(f"generator widths={widths} needs at least 2 entries (one up-sampling group)")
        ups = len(widths) - 1
        if patch_size < 1 or resolution % (patch_size * 2**ups):
            raise UserError(
                f"resolution={resolution} must be a multiple of patch_size={patch_size} x 2^{ups} "
                f"(widths={widths})"
            )
        if num_classes > 0 and latent_dim == 0:
            raise UserError(f"num_classes={num_classes} needs latent_dim > 0 (the class joins z)")
        self.channels, self.resolution = channels, resolution
        self.context_frames, self.future_frames = context_frames, future_frames
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.patch_size, self.output_margin, self.output = patch_size, output_margin, output
        self.state_size = resolution // (patch_size * 2**ups)
        inner_channels = channels * patch_size**2
        cond_dim = latent_dim + (latent_dim if num_classes > 0 else 0)
        self.encoder = ContextEncoder(inner_channels, widths, context_frames, use_sn)
        self.class_embed = embedding(num_classes, latent_dim, use_sn=False) if num_classes > 0 else None
        self.z_map_size = min(Z_MAP_SIZE, self.state_size)
        self.z_map_channels = widths[0] if latent_dim > 0 else 0
        self.z_to_map = (
            linear(cond_dim, self.z_map_channels * self.z_map_size**2, use_sn=False)
            if latent_dim > 0
            else None
        )
        inputs = [self.z_map_channels, *widths[:-1]]
        self.groups = nn.ModuleList(
            GeneratorGroup(cin, width, future_frames, cond_dim, use_sn, upsample=i > 0)
            for i, (cin, width) in enumerate(zip(inputs, widths))
        )
        self.out_bn = FrameBatchNorm(widths[-1], future_frames)
        self.out_conv = conv2d(widths[-1], inner_channels, use_sn=use_sn)
        self.warp_head = WarpHead(widths[-1], patch_size) if output == "warp" else None

    def forward(
        self,
        context: Tensor,
        z: Tensor | None = None,
        labels: Tensor | None = None,
        future_frames: int | None = None,
    ) -> Tensor:
        """context (B, Tc, C, H, W) in [0, 1], z (B, latent_dim), labels (B,) -> (B, Tf, C, H, W) in [0, 1].

        `future_frames` overrides the number of predicted frames Tf (default: the configured one).
        """
        check_video("context", context, self.channels, self.resolution, self.context_frames)
        steps = self.future_frames if future_frames is None else future_frames
        if steps < 1:
            raise ValueError(f"future_frames={steps} must be >= 1")
        cond = self._condition(z, labels, context.shape[0])
        states = self.encoder(space_to_depth(context * 2.0 - 1.0, self.patch_size))
        x = None
        if cond is not None:
            x = self.z_to_map(cond).view(-1, self.z_map_channels, self.z_map_size, self.z_map_size)
            x = F.interpolate(x, size=states[0].shape[-2:])  # nearest: 4x4 -> the first ConvGRU's size
        for group, h0 in zip(self.groups, states):
            x = group(h0, steps, x, cond)  # (B, Tf, width, r, r): the next group's per-step input
        h = rearrange(F.relu(self.out_bn(x)), "b t c h w -> (b t) c h w")
        out = rearrange(self.out_conv(h), "(b t) c h w -> b t c h w", t=steps)
        frames = 0.5 + (0.5 + self.output_margin) * torch.tanh(depth_to_space(out, self.patch_size))
        frames = frames.clamp(0.0, 1.0)  # a no-op at m = 0
        if self.warp_head is None:
            return frames
        flow, blend = (rearrange(y, "(b t) c h w -> b t c h w", t=steps) for y in self.warp_head(h))
        return warp_roll_out(context[:, -1], flow, blend, frames)  # frames: the pixel head's

    def _condition(self, z: Tensor | None, labels: Tensor | None, batch: int) -> Tensor | None:
        """The conditioning vector (B, cond_dim): z, joined to the class embedding when conditional."""
        if self.latent_dim == 0:
            if z is not None:
                raise ValueError("this generator is deterministic (latent_dim=0) but z was given")
            return None
        if z is None or tuple(z.shape) != (batch, self.latent_dim):
            got = None if z is None else tuple(z.shape)
            raise ValueError(f"z must be (B={batch}, latent_dim={self.latent_dim}), got {got}")
        if self.class_embed is None:
            return z
        if labels is None:
            raise ValueError(
                f"this generator is class-conditional (num_classes={self.num_classes}); pass labels"
            )
        return torch.cat([z, self.class_embed(labels)], dim=1)
