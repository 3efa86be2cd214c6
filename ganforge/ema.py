"""Exponential moving average of generator weights (Karras et al. 2018; Yazici et al. 2019).

After every generator update at step s:

    theta_ema <- decay_s * theta_ema + (1 - decay_s) * theta,   decay_s = 0 if s < start_step else decay

so before `start_step` the average is a plain copy. Buffers (batch-norm statistics, spectral-norm
power-iteration vectors, `num_batches_tracked`) are copied, not averaged: the EMA model must see
the statistics that match the live weights it tracks.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from ganforge.errors import UserError


class EMA(nn.Module):
    """Holds `model`, a frozen copy of the tracked network, and updates it in place."""

    def __init__(self, source: nn.Module, decay: float = 0.999, start_step: int = 0) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise UserError(f"ema decay={decay} must be in [0, 1); it is the weight on the old average")
        if start_step < 0:
            raise UserError(f"ema start_step={start_step} must be >= 0")
        self.decay = decay
        self.start_step = start_step
        self.model = copy.deepcopy(source).eval().requires_grad_(False)
        self._pairs: tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]] | None = None

    def decay_at(self, step: int) -> float:
        """The decay applied by `update(source, step)`."""
        return 0.0 if step < self.start_step else self.decay

    def _match(self, source: nn.Module) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        """Pair tensors by name; raises if the two networks differ (never zip silently)."""
        ours, theirs = dict(self.model.named_parameters()), dict(source.named_parameters())
        our_bufs, their_bufs = dict(self.model.named_buffers()), dict(source.named_buffers())
        if ours.keys() != theirs.keys() or our_bufs.keys() != their_bufs.keys():
            missing = sorted((theirs.keys() ^ ours.keys()) | (their_bufs.keys() ^ our_bufs.keys()))
            raise ValueError(f"EMA model and source differ in tensors: {missing[:5]}")
        names, bufs = sorted(ours), sorted(our_bufs)
        return (
            [ours[n] for n in names],
            [theirs[n].detach() for n in names],
            [our_bufs[n] for n in bufs],
            [their_bufs[n] for n in bufs],
        )

    @torch.no_grad()
    def update(self, source: nn.Module, step: int) -> None:
        """One EMA step from `source` (the live network) at generator step `step`."""
        if self._pairs is None:
            self._pairs = self._match(source)
        dst, src, dst_bufs, src_bufs = self._pairs
        weight = 1.0 - self.decay_at(step)
        if weight == 1.0:
            torch._foreach_copy_(dst, src)
        else:
            torch._foreach_lerp_(dst, src, weight)
        if dst_bufs:
            torch._foreach_copy_(dst_bufs, src_bufs)

    def _apply(self, fn, recurse=True):  # noqa: ANN001, ANN202 - nn.Module override
        self._pairs = None  # .to()/.cuda() replace tensors; re-pair on the next update
        return super()._apply(fn, recurse)

    def load_state_dict(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        self._pairs = None
        return super().load_state_dict(*args, **kwargs)
