"""The CLIP stage's symmetric InfoNCE loss, over the global batch under DDP.

Under DDP every training step contrasts each rank's pairs against the whole global batch, as
open_clip does with `--gather-with-grad --local-loss`: the features of all ranks are gathered with
gradients, each rank scores its own B images against all W*B captions (and its B captions against
all W*B images), and the gathered features pass their gradients back to the rank that made them.
The mean of the ranks' losses is then exactly the one-process loss on the global batch, and so are
DDP's averaged gradients: more GPUs bring more negatives. Light on imports (torch only), so a
multi-process test starts quickly.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _GatherWithGrad(torch.autograd.Function):
    """(B, D) per rank -> (W*B, D) in rank order; backward: this rank's rows of the rank-summed gradient."""

    @staticmethod
    def forward(ctx: Any, local: Tensor) -> Tensor:
        parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, local.contiguous())
        ctx.rows = slice(dist.get_rank() * len(local), (dist.get_rank() + 1) * len(local))
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        # Every rank's loss depends on every rank's features: sum the gradients over ranks.
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rows]


def gather_features(local: Tensor) -> tuple[Tensor, int]:
    """All ranks' features (W*B, D) with gradients and the row of this rank's first; (local, 0) without DDP.

    Every rank must pass the same B (the training loader drops the last, incomplete batch).
    """
    if not _distributed():
        return local, 0
    return _GatherWithGrad.apply(local), dist.get_rank() * len(local)


def symmetric_infonce(
    image: Tensor, text: Tensor, logit_scale: Tensor, gather: bool
) -> tuple[Tensor, Tensor]:
    """CLIP's loss of unit image (B, D) and text (B, D) embeddings, and the top-1 image->text accuracy.

    `logit_scale` is the log temperature (a scalar). With `gather` under DDP the logits are
    (B, W*B) against the global batch, with this rank's matches at columns rank*B ... rank*B + B - 1;
    otherwise (B, B) against the local batch.
    """
    all_image, first = gather_features(image) if gather else (image, 0)
    all_text, _ = gather_features(text) if gather else (text, 0)
    scale = logit_scale.exp()
    logits = scale * image @ all_text.T  # (B, W*B)
    logits_text = scale * text @ all_image.T  # (B, W*B)
    target = torch.arange(first, first + len(image), device=image.device)
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits_text, target)) / 2
    return loss, (logits.argmax(dim=1) == target).float().mean()
