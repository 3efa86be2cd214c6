"""The text encoder: CLIP's text transformer giving a sentence embedding and per-token features.

`clip.model.CLIP.encode_text` returns only the EOT token projected to the joint space. Attention
over words (AttnGAN, Obj-GAN) needs every token, so `text_features` runs the text tower itself:
token + positional embedding -> causal transformer -> ln_final gives token features (B, L, W);
the EOT token's feature @ text_projection is the sentence embedding (B, D), equal to encode_text.

`build_text_encoder` gives the layout and image stages their tower: a local CLIP file's, or a
randomly initialised one of a `TextTowerShape`; `tower_hparams`, the arguments their checkpoints
record to rebuild it without the CLIP file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from t2i.models.clip_model import CLIP, build_clip, load_clip, tokenize


@dataclass
class TextFeatures:
    """Encoded captions.

    sentence: (B, D) the EOT feature projected to CLIP's joint space (not unit-normalised).
    tokens: (B, L, W) transformer features per token, SOT and EOT included; zero at padding.
    padding_mask: (B, L) bool, True at padding (the positions after EOT).
    """

    sentence: Tensor
    tokens: Tensor
    padding_mask: Tensor

    def trim(self, used: int) -> TextFeatures:
        """The first `used` token columns, tokens (B, used, W) and padding_mask (B, used), where `used`
        covers every caption's tokens (`TextEncoder.tokens_of`): the columns after it are padding in
        every row, which attention masks out, so attending over them only costs time."""
        return TextFeatures(self.sentence, self.tokens[:, :used], self.padding_mask[:, :used])


def text_features(tower: nn.Module, tokens: Tensor, used: int | None = None) -> TextFeatures:
    """Run a CLIP text tower on token ids (B, L) from `tokenize`.

    `tower` is a `clip.model.CLIP` or a `TextEncoder` (both carry token_embedding,
    positional_embedding, transformer, ln_final and text_projection). The attention is causal, so
    the transformer only runs over the first `max(EOT position) + 1` tokens: the features of real
    tokens are exactly those of the full-length pass, and padding positions are set to zero.
    `used` is that length when the caller read it before the tokens went to the device
    (`TextEncoder.tokens_of`); None reads it from `tokens`, a host sync when they are on a GPU.
    """
    batch, length = tokens.shape
    eot = tokens.argmax(dim=-1)  # EOT has the largest id in CLIP's vocabulary
    used = int(eot.max()) + 1 if used is None else used
    x = tower.token_embedding(tokens[:, :used]) + tower.positional_embedding[:used]
    x = tower.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)  # clip's transformer is (L, B, W)
    x = tower.ln_final(x)  # (B, used, W)
    sentence = x[torch.arange(batch, device=x.device), eot] @ tower.text_projection
    padding_mask = torch.arange(length, device=tokens.device)[None, :] > eot[:, None]
    features = x.new_zeros(batch, length, x.shape[-1])
    features[:, :used] = x.masked_fill(padding_mask[:, :used, None], 0.0)
    return TextFeatures(sentence=sentence, tokens=features, padding_mask=padding_mask)


class TextEncoder(nn.Module):
    """CLIP's text tower as a module: frozen by default, fp32, with the tokenizer attached.

    Holds only the text parts of the given CLIP model (shared, not copied); the image tower is
    not kept. `encode(captions)` tokenizes with CLIP's BPE, truncating (with a warning) captions
    longer than the model's context length.

    Args:
        clip_model: a `clip.model.CLIP`, e.g. from `load_clip` or the clip stage.
        trainable: leave the weights trainable; otherwise they get requires_grad=False and
            encoding runs without autograd.
    """

    def __init__(self, clip_model: CLIP, trainable: bool = False) -> None:
        super().__init__()
        self.token_embedding = clip_model.token_embedding
        self.positional_embedding = clip_model.positional_embedding
        self.transformer = clip_model.transformer
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection
        self.trainable = trainable
        self.requires_grad_(trainable)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, trainable: bool = False) -> TextEncoder:
        """Load a local CLIP file (see `t2i.models.clip_model.load_clip`) and keep its text tower."""
        return cls(load_clip(path), trainable=trainable)

    @property
    def width(self) -> int:
        """W: width of the token features."""
        return self.ln_final.weight.shape[0]

    @property
    def embed_dim(self) -> int:
        """D: width of the sentence embedding."""
        return self.text_projection.shape[1]

    @property
    def context_length(self) -> int:
        """L: tokens per caption, SOT and EOT included."""
        return self.positional_embedding.shape[0]

    def forward(self, tokens: Tensor, used: int | None = None) -> TextFeatures:
        """Features of token ids (B, L), `used` of them at most per caption; see `text_features`."""
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            return text_features(self, tokens, used)

    def tokens_of(self, captions: list[str]) -> tuple[Tensor, int]:
        """Token ids (B, L) of captions, on the CPU, and max(EOT position) + 1, read there (no device sync).

        A training step calls it on the host batch before it goes to the device (the image and layout
        stages' `on_before_batch_transfer`) and passes both to `forward`.
        """
        tokens = tokenize(captions, self.context_length)
        return tokens, int(tokens.argmax(dim=-1).max()) + 1

    def encode(self, captions: list[str]) -> TextFeatures:
        """Tokenize and encode captions: sentence (B, D), tokens (B, L, W), padding_mask (B, L)."""
        tokens, used = self.tokens_of(captions)
        return self(tokens.to(self.positional_embedding.device, non_blocking=True), used)


@dataclass
class TextTowerShape:
    """Sizes of a CLIP text tower (`clip.model.CLIP` text side).

    embed_dim: D of the sentence embedding; context_length: L; width: W (a multiple of 64);
    layers: transformer blocks.
    """

    embed_dim: int = 64
    context_length: int = 32
    width: int = 64
    layers: int = 2


def build_text_encoder(clip_path: str | None, shape: TextTowerShape, trainable: bool) -> TextEncoder:
    """The CLIP text tower of the local file `clip_path`, or a randomly initialised one of `shape`."""
    if clip_path is not None:
        return TextEncoder(load_clip(clip_path), trainable=trainable)
    clip = build_clip(
        embed_dim=shape.embed_dim,
        image_resolution=32,  # the image tower is dropped by TextEncoder; keep it minimal
        vision_width=64,
        vision_layers=1,
        vision_patch_size=32,
        context_length=shape.context_length,
        text_width=shape.width,
        text_layers=shape.layers,
    )
    return TextEncoder(clip, trainable=trainable)


def text_tower_shape(encoder: TextEncoder) -> TextTowerShape:
    """The sizes of `encoder`, e.g. to rebuild it empty before loading a checkpoint."""
    return TextTowerShape(
        embed_dim=encoder.embed_dim,
        context_length=encoder.context_length,
        width=encoder.width,
        layers=len(encoder.transformer.resblocks),
    )


def tower_hparams(encoder: TextEncoder) -> dict[str, Any]:
    """The stage arguments (`clip_path=None` and the text_* sizes) that rebuild `encoder` empty: a
    stage records them in its hparams, so its checkpoint, which holds the tower's weights, loads
    without the CLIP file."""
    shape = text_tower_shape(encoder)
    return {
        "clip_path": None,
        "text_embed_dim": shape.embed_dim,
        "text_context_length": shape.context_length,
        "text_width": shape.width,
        "text_layers": shape.layers,
    }
