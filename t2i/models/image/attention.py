"""Caption attention for the image stage: Obj-GAN's object-driven attention and AttnGAN's word attention.

- `ObjectTextAttention` (Li et al. 2019, Obj-GAN §3.2): each object's class embedding is a query over
  the caption's token features; the object's context vector is what the caption says about it
  ("red" for the circle of "a red circle left of a blue square": CLIP's causal token features at
  "circle" have read "red"). `paint` then writes each context into its object's mask only.
  With `phrases=True` a bidirectional GRU over the tokens adds each token's neighbours to it first
  (Obj-GAN's bi-LSTM word features): the causal feature at "square" has read both colours, the
  GRU's can say which one is its own.
- `WordRegionAttention` (Xu et al. 2018, AttnGAN §3.1): every image region is a query over the
  tokens, giving a word-context map the same size as the features.

Both use scaled dot-product attention that skips padding tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def attend(queries: Tensor, keys: Tensor, values: Tensor, padding_mask: Tensor) -> Tensor:
    """Single-head attention of queries (B, Q, A) over keys (B, L, A) / values (B, L, E) -> (B, Q, E).

    Tokens where `padding_mask` (B, L) is True get no weight; every caption has SOT and EOT, so each
    row attends to at least one token. Written out rather than `F.scaled_dot_product_attention`:
    with values narrower than keys CPU has no fused kernel for it, and its fallback took 2-3x this
    form's time under bf16 autocast (the word attention runs over every region of every G block).
    The scores are laid out tokens first, (B, L, Q): a CPU softmax over a short last dimension
    (L tokens, Q = 4096 regions) took ~10x the time of one over dimension 1 of this layout.
    """
    scores = (keys * queries.shape[-1] ** -0.5) @ queries.transpose(-1, -2)  # (B, L, Q)
    weights = scores.masked_fill(padding_mask[:, :, None], float("-inf")).softmax(dim=1)
    return weights.transpose(-1, -2) @ values


def paint(values: Tensor, masks: Tensor, object_mask: Tensor | None = None) -> Tensor:
    """Paint per-object vectors (B, N, E) into their masks (B, N, H, W) -> feature map (B, E, H, W).

    Pixel (h, w) receives sum_n masks[b, n, h, w] * values[b, n]: zero outside every mask. Objects
    with `object_mask` (B, N) False (padding) paint nothing. The map is in channels-last memory,
    the layout of the blocks' features it modulates (element-wise ops across layouts are slow).
    """
    if object_mask is not None:
        masks = masks * object_mask[:, :, None, None].to(masks.dtype)
    return torch.einsum("bne,bnhw->bhwe", values, masks).permute(0, 3, 1, 2)


class PhraseContext(nn.Module):
    """Tokens (B, L, W) plus a bidirectional GRU's reading of their neighbours (B, L, W); padding skipped.

    Equal to running the GRU on packed sequences, without `pack_padded_sequence` (whose lengths must
    be on the host): the padding follows the last real token, so the forward direction reads the
    tokens as they are; the backward direction reads each caption shifted right until its last real
    token ends the row, so it starts there. Outputs at padding are zero, as `pad_packed_sequence`'s.
    """

    def __init__(self, token_dim: int) -> None:
        super().__init__()
        self.gru = nn.GRU(token_dim, token_dim // 2, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * (token_dim // 2), token_dim)
        nn.init.zeros_(self.out.weight)  # starts as the identity on the tokens
        nn.init.zeros_(self.out.bias)

    def forward(self, tokens: Tensor, padding_mask: Tensor) -> Tensor:
        """Tokens (B, L, W) with padding_mask (B, L) (True after each caption's last token) -> (B, L, W)."""
        batch, length = padding_mask.shape
        shift = padding_mask.sum(dim=1, keepdim=True)  # (B, 1): padding tokens per caption
        positions = torch.arange(length, device=tokens.device)
        right_aligned = ((positions - shift) % length)[..., None].expand_as(tokens)  # (B, L, W) gather index
        shifted = tokens.gather(1, right_aligned)  # each caption ends at the row's end
        # CPU autocast runs a bf16 GRU cell by cell, casting the weights at every token: fp32 is faster.
        with torch.autocast("cpu", enabled=False):
            read, _ = self.gru(torch.cat([tokens, shifted]).float())  # (2B, L, 2H): both directions
        hidden = read.shape[-1] // 2
        forward = read[:batch, :, :hidden]
        left_aligned = ((positions + shift) % length)[..., None].expand(batch, length, hidden)
        backward = read[batch:, :, hidden:].gather(1, left_aligned)  # back to the tokens' positions
        read = torch.cat([forward, backward], dim=-1).masked_fill(padding_mask[..., None], 0.0)
        return tokens + self.out(read)


class ObjectTextAttention(nn.Module):
    """Object-driven attention: class embeddings (B, N, Q) attend over tokens (B, L, W) -> contexts (B, N, E).

    With per-object tokens (B, N, P, W) (each object's own phrase, `t2i.models.phrases`), each object
    attends over its own.

    Args:
        query_dim: Q, width of the class embeddings.
        token_dim: W, width of the caption's token features.
        out_dim: E, width of each object's context vector.
        attn_dim: A, width of queries and keys.
        phrases: read the tokens through a `PhraseContext` first.
    """

    def __init__(
        self, query_dim: int, token_dim: int, out_dim: int, attn_dim: int = 64, phrases: bool = False
    ) -> None:
        super().__init__()
        self.phrases = PhraseContext(token_dim) if phrases else None
        self.query = nn.Linear(query_dim, attn_dim)
        self.key = nn.Linear(token_dim, attn_dim)
        self.value = nn.Linear(token_dim, out_dim)

    def forward(self, class_embeddings: Tensor, tokens: Tensor, padding_mask: Tensor) -> Tensor:
        """Contexts (B, N, E) of class embeddings (B, N, Q) over tokens (B, L, W) with padding (B, L),
        or over per-object tokens (B, N, P, W) with padding (B, N, P)."""
        if tokens.dim() == 4:  # one phrase per object: a batch of B * N single-query attentions
            queries = rearrange(class_embeddings, "b n q -> (b n) 1 q")
            flat = self(queries, tokens.flatten(0, 1), padding_mask.flatten(0, 1))
            return rearrange(flat, "(b n) 1 e -> b n e", n=class_embeddings.shape[1])
        if self.phrases is not None:
            tokens = self.phrases(tokens, padding_mask)
        return attend(self.query(class_embeddings), self.key(tokens), self.value(tokens), padding_mask)


class WordRegionAttention(nn.Module):
    """AttnGAN word attention: each region of features (B, C, H, W) attends over tokens -> (B, C, H, W).

    The word context is concatenated with the features and mixed back by a 1x1 conv, as a residual:
    out = features + mix([features ; context]). Attention is linear in its values, so the mix's
    context half is applied to the L token values instead of to the H*W context map: the same
    output, without the concatenated (B, 2C, H, W) map and its layout copies (the 64 px stage's
    attention fwd + bwd: 0.85x the time under CPU bf16 autocast).
    """

    def __init__(self, channels: int, token_dim: int, attn_dim: int = 32) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, attn_dim, 1)
        self.key = nn.Linear(token_dim, attn_dim)
        self.value = nn.Linear(token_dim, channels)
        self.mix = nn.Conv2d(2 * channels, channels, 1)
        nn.init.zeros_(self.mix.weight)  # starts as the identity: attention fades in as it learns
        nn.init.zeros_(self.mix.bias)

    def forward(self, features: Tensor, tokens: Tensor, padding_mask: Tensor) -> Tensor:
        """Features (B, C, H, W) plus their word context, given tokens (B, L, W) and padding (B, L)."""
        channels, height, width = features.shape[1:]
        mix_features, mix_context = self.mix.weight.flatten(1).split(channels, dim=1)  # (C, C) each
        queries = rearrange(self.query(features), "b a h w -> b (h w) a")
        values = F.linear(self.value(tokens), mix_context)  # (B, L, C): token values, mixed
        context = attend(queries, self.key(tokens), values, padding_mask)  # (B, H*W, C)
        context = rearrange(context, "b (h w) c -> b c h w", h=height, w=width)
        return features + F.conv2d(features, mix_features[..., None, None], self.mix.bias) + context
