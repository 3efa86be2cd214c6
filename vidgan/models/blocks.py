"""Residual blocks of DVD-GAN (Clark et al. 2019), which reuses BigGAN's (Brock et al. 2019) blocks.

- `DBlock`: a discriminator / encoder block, 2-D or 3-D, with optional 2x spatial down-sampling.
- `FrameBatchNorm`: (conditional) batch norm for video whose statistics are per frame, optionally
  over the global batch of all DDP ranks (cross-replica batch norm).
- `GBlock`: a generator block applied per frame (time folded into batch), optionally 2x up-sampling.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.distributed.nn.functional import all_reduce

from vidgan.models.layers import conv2d, conv3d, linear


class DBlock(nn.Module):
    """BigGAN D block: [relu] conv3 relu conv3 [pool] + shortcut (1x1 conv, pool).

    `dims=2` takes (N, C, H, W); `dims=3` takes (N, C, T, H, W) with 3x3x3 convs and pools only
    space (kernel 1x2x2), so the number of frames is kept. `preactivation=False` is BigGAN's first
    ("optimised") block: no ReLU on the raw input and pool-then-conv on the shortcut.

    The block computes in channels-last memory (`torch.channels_last`, `channels_last_3d` for
    `dims=3`; the values are the same): oneDNN's convolutions are faster on it and CPU average
    pooling is 4-9x faster than on (N, C, H, W) memory: a vidgan training step takes 0.93x (bf16) to
    0.95x (fp32) the time (docs/benchmarks.md). The generator's ConvGRUs stay in (N, C, H, W) memory,
    where they run faster.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        *,
        dims: int = 2,
        downsample: bool = True,
        preactivation: bool = True,
        use_sn: bool = True,
    ) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"DBlock dims={dims} must be 2 or 3")
        conv = conv2d if dims == 2 else conv3d
        self.conv1, self.conv2 = conv(cin, cout, use_sn=use_sn), conv(cout, cout, use_sn=use_sn)
        self.shortcut = conv(cin, cout, kernel=1, use_sn=use_sn) if cin != cout or downsample else None
        self.dims, self.downsample, self.preactivation = dims, downsample, preactivation
        self.memory_format = torch.channels_last if dims == 2 else torch.channels_last_3d

    def _pool(self, x: Tensor) -> Tensor:
        if not self.downsample:
            return x
        return F.avg_pool2d(x, 2) if self.dims == 2 else F.avg_pool3d(x, (1, 2, 2))

    def forward(self, x: Tensor) -> Tensor:
        """(N, Cin, [T,] H, W) -> (N, Cout, [T,] H/2, W/2) (H, W kept when downsample=False)."""
        x = x.contiguous(memory_format=self.memory_format)
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.shortcut is None:  # no down-sampling either
            return h + x
        if self.preactivation:  # average pooling is linear: one pool of the sum, not one per branch
            return self._pool(h + self.shortcut(x))
        return self._pool(h) + self.shortcut(self._pool(x))


class FrameBatchNorm(nn.Module):
    """Batch norm for video features (B, T, C, H, W) with per-frame statistics.

    DVD-GAN does not pool batch-norm statistics over time. Convolutions fold time into batch, but
    normalisation does not: in training, frame t is normalised with the mean and variance of each
    channel over (B, H, W) at that t only, so frames whose ConvGRU states have drifted apart are
    not pulled toward a common statistic. Eval mode uses running statistics kept per frame index
    as well (`frames` rows); pooling them over time would mismatch every frame whose statistics
    differ from the average. Frames past the last row (predicting more frames than trained on)
    use the last row.

    With `cond_dim > 0` this is BigGAN's conditional batch norm: gain `1 + W_g c` and bias `W_b c`
    from a conditioning vector c (B, cond_dim) (the latent z, optionally joined to a class
    embedding), the same for every frame of a clip; W_g and W_b start at zero. With `cond_dim == 0`
    the gain and bias are plain learned per-channel parameters.

    Cross-replica statistics (DVD-GAN and BigGAN normalise over the global batch): with
    `sync_statistics = True` and an initialised process group, the per-frame
    sum, sum of squares and element count are all-reduced (with autograd, so gradients flow through
    every rank's share of the statistics) and every rank normalises with the same global mean and
    variance. `ganforge.layer_sync.BatchStatisticsSync` sets the flag when Lightning's
    `trainer.sync_batchnorm` is on. It works on any backend, gloo on CPU included.
    """

    sync_statistics: bool = False

    def __init__(
        self, channels: int, frames: int, cond_dim: int = 0, eps: float = 1e-5, momentum: float = 0.1
    ) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.register_buffer("running_mean", torch.zeros(frames, channels))
        self.register_buffer("running_var", torch.ones(frames, channels))
        if cond_dim > 0:
            # Plain (no spectral norm) so G can learn how much z moves each gain and bias, and zero at
            # init: G starts as the unconditional network. An orthogonal init gave every gain a
            # N(0, 1) perturbation per sample, noise the reconstruction term spent hundreds of steps
            # unlearning (docs/results.md, the demo runs).
            self.gain = linear(cond_dim, channels, bias=False, use_sn=False)
            self.bias = linear(cond_dim, channels, bias=False, use_sn=False)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)
        else:
            self.gain_param = nn.Parameter(torch.ones(channels))
            self.bias_param = nn.Parameter(torch.zeros(channels))
        self.cond_dim = cond_dim

    def _running(self, frames: int) -> tuple[Tensor, Tensor]:
        """Running (mean, var), each (1, T, C, 1, 1), the last row repeated past the stored frames."""
        rows = torch.arange(frames, device=self.running_mean.device).clamp_max(self.running_mean.shape[0] - 1)
        return self.running_mean[rows][None, :, :, None, None], self.running_var[rows][None, :, :, None, None]

    def _batch_statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Biased (mean, var) of x (B, T, C, H, W) over (B, H, W) of all ranks, each (1, T, C, 1, 1)."""
        count = x.new_tensor([x.shape[0] * x.shape[3] * x.shape[4]])
        local = torch.cat([x.sum(dim=(0, 3, 4)).flatten(), x.square().sum(dim=(0, 3, 4)).flatten(), count])
        total = all_reduce(local)
        sums, squares = total[:-1].view(2, 1, x.shape[1], x.shape[2], 1, 1) / total[-1]
        return sums, (squares - sums.square()).clamp_min(0.0)

    def _normalise_local(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, T, C, H, W) normalised with its own per-frame statistics, and the biased (mean, var).

        One fused `F.batch_norm` over (B, T*C, H, W), whose channels are the (frame, channel) pairs:
        its statistics are exactly the per-frame ones, and its backward is one pass instead of
        autograd through a variance and four broadcast element-wise ops. With momentum 1 it writes
        the batch mean and the unbiased variance into fresh fp32 buffers; the variance is rescaled
        to the biased one the normalisation used. A bf16 x stays bf16: the kernel accumulates the
        statistics in fp32 itself, so no fp32 copy of x is made. Returns normed (B, T, C, H, W) in
        x's dtype and (mean, var), each (1, T, C, 1, 1) in fp32 (fp64 for an fp64 x).
        """
        b, t, c, h, w = x.shape
        mean, var = x.new_zeros(2, 1, t, c, 1, 1, dtype=torch.promote_types(x.dtype, torch.float32))
        normed = F.batch_norm(
            x.reshape(b, t * c, h, w), mean.view(-1), var.view(-1), training=True, momentum=1.0, eps=self.eps
        )
        n = b * h * w
        return normed.view(b, t, c, h, w), mean, var * ((n - 1) / n)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """x (B, T, C, H, W), cond (B, cond_dim) or None -> (B, T, C, H, W)."""
        synced = self.sync_statistics and dist.is_available() and dist.is_initialized()
        if self.training and not synced:
            normed, mean, var = self._normalise_local(x)
        else:
            # statistics and normalisation in fp32 for a bf16 x, fp64 kept, as in `_normalise_local`
            xf = x.to(torch.promote_types(x.dtype, torch.float32))
            mean, var = self._batch_statistics(xf) if self.training else self._running(x.shape[1])
            normed = (xf - mean) * torch.rsqrt(var + self.eps)
        if self.training:
            with torch.no_grad():
                kept = min(x.shape[1], self.running_mean.shape[0])
                self.running_mean[:kept].lerp_(mean[0, :kept, :, 0, 0], self.momentum)
                self.running_var[:kept].lerp_(var[0, :kept, :, 0, 0], self.momentum)
        if self.cond_dim > 0:
            if cond is None:
                raise ValueError("FrameBatchNorm built with cond_dim > 0 needs a conditioning vector")
            gain = 1.0 + self.gain(cond)[:, None, :, None, None]  # (B, 1, C, 1, 1)
            bias = self.bias(cond)[:, None, :, None, None]
        else:
            gain = self.gain_param.view(1, 1, -1, 1, 1)
            bias = self.bias_param.view(1, 1, -1, 1, 1)
        # The affine in normed's dtype: bf16 in a bf16 training step, fp32 otherwise. A multiply and an
        # add, not `torch.addcmul`: with the (B, 1, C, 1, 1) broadcast its bf16 forward + backward
        # took ~1.6x as long on this CPU.
        return (normed * gain.to(normed.dtype) + bias.to(normed.dtype)).to(x.dtype)


class GBlock(nn.Module):
    """BigGAN G block on video, per frame: bn relu [up] conv3 bn relu conv3 + ([up], 1x1 conv) shortcut.

    `frames` is the number of frames whose batch-norm running statistics are kept (see FrameBatchNorm).
    The shortcut is the identity when the block neither changes the width nor up-samples.
    """

    def __init__(
        self, cin: int, cout: int, frames: int, cond_dim: int = 0, use_sn: bool = True, upsample: bool = True
    ) -> None:
        super().__init__()
        self.bn1, self.bn2 = FrameBatchNorm(cin, frames, cond_dim), FrameBatchNorm(cout, frames, cond_dim)
        self.conv1, self.conv2 = conv2d(cin, cout, use_sn=use_sn), conv2d(cout, cout, use_sn=use_sn)
        self.shortcut = conv2d(cin, cout, kernel=1, use_sn=use_sn) if cin != cout or upsample else None
        self.upsample = upsample

    def _up(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2.0) if self.upsample else x

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """x (B, T, Cin, H, W), cond (B, cond_dim) or None -> (B, T, Cout, 2H, 2W) (H, W if not upsample)."""
        frames = x.shape[1]
        fold, unfold = "b t c h w -> (b t) c h w", "(b t) c h w -> b t c h w"
        h = F.relu(self.bn1(x, cond))
        h = self.conv1(self._up(rearrange(h, fold)))
        h = F.relu(self.bn2(rearrange(h, unfold, t=frames), cond))
        # A 1x1 conv commutes with nearest up-sampling, so the shortcut convolves at the low resolution.
        skip = rearrange(x, fold) if self.shortcut is None else self._up(self.shortcut(rearrange(x, fold)))
        return rearrange(self.conv2(rearrange(h, fold)) + skip, unfold, t=frames)
