"""Convolutional GRU (Ballas et al. 2016), the recurrent unit of every DVD-GAN generator group.

    r, u = sigmoid(W_ru * x + U_ru * h)          reset and update gates
    c    = tanh(W_c * x + U_c * (r . h))         candidate state
    h'   = u . h + (1 - u) . c

`*` is a 3x3 convolution and `.` the element-wise product. Input and hidden paths have separate
convolutions (the standard GRU form). The input path `W * x` does not depend on h, so it is
computed for all steps at once before the unroll: once for an input that is the same at every step
(DVD-GAN's latent map feeding the first group), in one batched convolution over time for a
per-step input (the previous group's output). The input may be absent (the deterministic
baseline has no latent), in which case the gates see only h. The hidden convolutions' weights are
computed once per unroll (spectral norm's power iteration and division included), not once per step.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.nn.utils import parametrize

from vidgan.models.layers import conv2d


class ConvGRUCell(nn.Module):
    """One ConvGRU step on (B, C, H, W) maps."""

    def __init__(
        self, input_channels: int, hidden_channels: int, kernel: int = 3, use_sn: bool = True
    ) -> None:
        super().__init__()
        self.input_path = (
            conv2d(input_channels, 3 * hidden_channels, kernel, use_sn) if input_channels else None
        )
        self.hidden_gates = conv2d(hidden_channels, 2 * hidden_channels, kernel, use_sn)
        self.hidden_candidate = conv2d(hidden_channels, hidden_channels, kernel, use_sn)
        self.input_channels, self.hidden_channels = input_channels, hidden_channels

    def input_terms(self, x: Tensor | None) -> Tensor | None:
        """W * x for x (B, C_in, H, W) or (B, T, C_in, H, W): (B, [T,] 3 C_h, H, W), None without input."""
        if (x is None) != (self.input_path is None):
            raise ValueError(
                f"ConvGRUCell built with input_channels={self.input_channels} got x={x is not None}"
            )
        if x is None:
            return None
        if x.dim() == 4:
            return self.input_path(x)
        terms = self.input_path(rearrange(x, "b t c h w -> (b t) c h w"))
        return rearrange(terms, "(b t) c h w -> b t c h w", b=x.shape[0])

    def forward(self, h: Tensor, input_terms: Tensor | None = None) -> Tensor:
        """h (B, C_h, H, W) and one step of `input_terms(x)` (B, 3 C_h, H, W) (or None) -> next h."""
        gates = self.hidden_gates(h)
        if input_terms is not None:
            x_gates, x_candidate = input_terms.split([2 * self.hidden_channels, self.hidden_channels], dim=1)
            gates = gates + x_gates
        reset, update = torch.sigmoid(gates).chunk(2, dim=1)
        candidate = self.hidden_candidate(reset * h)
        if input_terms is not None:
            candidate = candidate + x_candidate
        return update * h + (1.0 - update) * torch.tanh(candidate)


class ConvGRU(nn.Module):
    """A ConvGRU cell unrolled over time from an initial state."""

    def __init__(
        self, input_channels: int, hidden_channels: int, kernel: int = 3, use_sn: bool = True
    ) -> None:
        super().__init__()
        self.cell = ConvGRUCell(input_channels, hidden_channels, kernel, use_sn)

    def forward(self, h0: Tensor, steps: int, x: Tensor | None = None) -> Tensor:
        """Unroll `steps` times from h0 (B, C_h, H, W).

        x: the input, (B, C_in, H, W) for the same input at every step, (B, steps, C_in, H, W) for
        one per step, or None for a cell without input. Returns the state after each step,
        (B, T=steps, C_h, H, W).
        """
        if x is not None and x.dim() == 5 and x.shape[1] != steps:
            raise ValueError(f"ConvGRU input has T={x.shape[1]} steps, expected {steps}")
        terms = self.cell.input_terms(x)
        per_step = terms is not None and terms.dim() == 5
        states, h = [], h0
        with parametrize.cached():  # one spectrally normalised weight per unroll, reused by every step
            for t in range(steps):
                h = self.cell(h, terms[:, t] if per_step else terms)
                states.append(h)
        return torch.stack(states, dim=1)
