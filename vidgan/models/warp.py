"""The warp output head: each predicted frame is the previous frame moved by a predicted flow.

Frames predicted as pixels must be redrawn from the generator's features, and in a short run they come
out as blobs. With `output="warp"` the generator instead predicts, per frame t, a flow field and a blend
mask at full resolution:

    frame_t = m_t * warp(frame_{t-1}, flow_t) + (1 - m_t) * pixels_t,   frame_0 = the last context frame

where `warp` is a backward bilinear warp (`F.grid_sample`) and pixels_t is the pixel head's frame, which
paints what the flow cannot bring (content that enters or was hidden). This is the flow-and-mask
composite of DVF (Liu et al. 2017) and SAVP (Lee et al. 2018), unrolled over the predicted frames.
The head starts at flow 0 and m = sigmoid(4) = 0.98, so a new generator predicts (almost) copy-last
and learns the motion from there. See docs/vidgan_model.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

BLEND_LOGIT_AT_INIT = 4.0  # sigmoid(4) = 0.98: a new head keeps the warped frame


class WarpHead(nn.Module):
    """Features (N, width, r, r) -> flow (N, 2, r*scale, r*scale) in pixels (x, y) and blend logits
    (N, 1, r*scale, r*scale), both bilinearly up-sampled from the features' grid (a smooth flow).

    A plain conv, zero-initialised: spectral norm cannot start from a zero weight, and the flow and
    blend must start at their neutral values.
    """

    def __init__(self, width: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(width, 3, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        with torch.no_grad():
            self.conv.bias.copy_(torch.tensor([0.0, 0.0, BLEND_LOGIT_AT_INIT]))

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        out = self.conv(features).float()
        if self.scale > 1:
            out = F.interpolate(out, scale_factor=self.scale, mode="bilinear")
        return out[:, :2], out[:, 2:]


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """Backward warp, bilinear, black outside: out[y, x] = image[y + flow_y, x + flow_x].

    image (N, C, H, W), flow (N, 2, H, W) in pixels, x displacement first -> (N, C, H, W).
    """
    h, w = image.shape[-2:]
    identity = torch.eye(2, 3, device=image.device)[None]
    base = F.affine_grid(identity, [1, 1, h, w], align_corners=False)  # (1, H, W, 2): pixel centres, x, y
    scale = torch.tensor([2.0 / w, 2.0 / h], device=image.device)
    grid = (base + rearrange(flow, "n c h w -> n h w c") * scale).to(image.dtype)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def warp_roll_out(last: Tensor, flow: Tensor, blend_logits: Tensor, pixels: Tensor) -> Tensor:
    """Compose the predicted frames from the last context frame, one warp per step.

    last (B, C, H, W), flow (B, T, 2, H, W), blend_logits (B, T, 1, H, W), pixels (B, T, C, H, W), all
    in [0, 1] where they are images -> frames (B, T, C, H, W) in [0, 1], in fp32.
    """
    frame, frames = last.float(), []
    for t in range(flow.shape[1]):
        m = torch.sigmoid(blend_logits[:, t].float())
        frame = m * warp(frame, flow[:, t].float()) + (1 - m) * pixels[:, t].float()
        frames.append(frame)
    return torch.stack(frames, dim=1)
