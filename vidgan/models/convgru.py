"""Convolutional GRU (Ballas et al. 2016), the recurrent core of DVD-GAN's generator.

    r, u = sigmoid(W_ru * x + U_ru * h)          reset and update gates
    c    = tanh(W_c * x + U_c * (r . h))         candidate state
    h'   = u . h + (1 - u) . c

`*` is a 3x3 convolution and `.` the element-wise product. Input and hidden paths have separate
convolutions (the standard GRU form); since DVD-GAN feeds the same latent map x at every step, the
input path `W * x` is computed once per unroll. The input may be absent (the deterministic
baseline has no latent), in which case the gates see only h.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

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
        """W * x for x (B, C_in, H, W): (B, 3 C_h, H, W), or None when the cell has no input."""
        if (x is None) != (self.input_path is None):
            raise ValueError(
                f"ConvGRUCell built with input_channels={self.input_channels} got x={x is not None}"
            )
        return None if x is None else self.input_path(x)

    def forward(self, h: Tensor, input_terms: Tensor | None = None) -> Tensor:
        """h (B, C_h, H, W) and `input_terms(x)` (or None) -> the next h (B, C_h, H, W)."""
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
    """A ConvGRU cell unrolled over time from an initial state, with the same input at every step."""

    def __init__(
        self, input_channels: int, hidden_channels: int, kernel: int = 3, use_sn: bool = True
    ) -> None:
        super().__init__()
        self.cell = ConvGRUCell(input_channels, hidden_channels, kernel, use_sn)

    def forward(self, h0: Tensor, steps: int, x: Tensor | None = None) -> Tensor:
        """Unroll `steps` times from h0 (B, C_h, H, W) with input x (B, C_in, H, W) (or None).

        Returns the state after each step, (B, T=steps, C_h, H, W).
        """
        terms = self.cell.input_terms(x)
        states, h = [], h0
        for _ in range(steps):
            h = self.cell(h, terms)
            states.append(h)
        return torch.stack(states, dim=1)
