"""Discriminators of the t2i image stage: patch image D (unconditional + text-conditional) and object-wise D.

- `PatchDiscriminator`: BigGAN D blocks down to a grid of patch features; every patch gets an
  unconditional logit and a text-conditional one by projection (Miyato & Koyama 2018) onto the
  sentence embedding. The stage trains it with mismatched-caption negatives (AttnGAN, Obj-GAN).
- `ObjectDiscriminator` (Obj-GAN §3.3, LostGAN): RoIAlign crops the features at every object slot's
  box (`t2i.models.image.crops`: CPU and GPU, unlike Obj-GAN's CUDA-only ROI ops), padding slots included,
  so every shape is fixed and no step waits for a GPU to count objects (the losses mask the padding
  out); each object feature is scored with
  projections onto its class embedding and onto its object context (the D's own object-driven
  attention of the class over the caption), so it judges "is this a red circle", not just "a circle".

Every layer is spectrally normalised. Images enter in [0, 1] and are mapped to [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import UserError
from t2i.models.image.attention import ObjectTextAttention
from t2i.models.image.crops import crop_slots
from t2i.models.image.layers import DBlock, conv, sn
from t2i.models.text import TextFeatures


def down_blocks(
    channels: list[int], downsample: list[bool] | None = None, first: bool = False
) -> nn.Sequential:
    """DBlocks channels[0] -> channels[1] -> ...; each halves H and W unless `downsample` says otherwise."""
    downsample = downsample or [True] * (len(channels) - 1)
    pairs = zip(channels[:-1], channels[1:], downsample)
    return nn.Sequential(
        *(DBlock(cin, cout, down, first=first and i == 0) for i, (cin, cout, down) in enumerate(pairs))
    )


class PatchDiscriminator(nn.Module):
    """Patch D: images (B, 3, H, W) -> stem (B, C0, H/2, W/2) -> patch features (B, C, h, w) -> logits.

    The stem's features are shared with the object-wise D, which crops them at the boxes.

    Args:
        widths: channels of the down-sampling blocks (one halving each; the first is the stem).
        sentence_dim: D, width of the sentence embedding used by the conditional logits.
    """

    def __init__(self, widths: list[int], sentence_dim: int) -> None:
        super().__init__()
        widths = list(widths)
        self.stem = down_blocks([3, widths[0]], first=True)
        self.body = down_blocks(widths)
        self.unconditional = conv(widths[-1], 1, kernel=1)
        self.text_projection = sn(nn.Linear(sentence_dim, widths[-1], bias=False))

    def features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Stem (B, C0, H/2, W/2) and patch features (B, C, h, w) of images (B, 3, H, W) in [0, 1]."""
        stem = self.stem(images * 2 - 1)
        return stem, F.relu(self.body(stem))

    def logits(self, features: Tensor, sentence: Tensor | None = None) -> Tensor:
        """Logits (B, h*w) of patch features: unconditional, or conditional on sentence (B, D) when given.

        Conditional logit of patch p: u(f_p) + <f_p, W s> (projection discriminator).
        """
        logits = self.unconditional(features).flatten(1)
        if sentence is None:
            return logits
        projection = torch.einsum("bchw,bc->bhw", features, self.text_projection(sentence))
        return logits + projection.flatten(1)


class ObjectDiscriminator(nn.Module):
    """Object-wise D: ROI features of every object slot (B, N, C), class- and caption-projected logits (B, N).

    Padding slots get finite logits too; the stage's losses weigh them 0 (`ganforge.losses.masked_d_loss`).

    Args:
        stem_width: channels of the patch D's stem features it reads.
        widths: 3 channel counts: a block on the stem features before the ROI crops, then two blocks
            that each halve the ROI.
        num_classes: labels including the padding label 0.
        token_dim: W, width of the caption's token features.
        roi_size: side of each ROI crop.
        class_dim: width of the D's class embeddings used as attention queries.
        phrases: its object attention reads the tokens through a bidirectional GRU (`PhraseContext`).
    """

    def __init__(
        self,
        stem_width: int,
        widths: list[int],
        num_classes: int,
        token_dim: int,
        roi_size: int = 8,
        class_dim: int = 64,
        phrases: bool = False,
    ) -> None:
        super().__init__()
        if len(widths) != 3:
            raise UserError(f"object discriminator: widths={list(widths)}; expected 3 channel counts")
        self.roi_size = roi_size
        self.trunk = down_blocks([stem_width, widths[0]], downsample=[False])
        self.head = down_blocks(list(widths))
        self.unconditional = sn(nn.Linear(widths[2], 1))
        self.class_projection = sn(nn.Embedding(num_classes, widths[2]))
        self.class_query = nn.Embedding(num_classes, class_dim)
        self.object_attention = ObjectTextAttention(class_dim, token_dim, widths[2], phrases=phrases)
        self.context_projection = sn(nn.Linear(widths[2], widths[2], bias=False))

    def features(self, stem: Tensor, boxes: Tensor) -> Tensor:
        """Object features (B, N, C) of stem features (B, C0, h, w) at every slot's box (B, N, 4)."""
        crops = crop_slots(self.trunk(stem), boxes, self.roi_size)
        return F.relu(self.head(crops)).sum(dim=(2, 3)).unflatten(0, boxes.shape[:2])

    def conditioning(self, labels: Tensor, text: TextFeatures) -> Tensor:
        """Projection vectors (B, N, C) of labels (B, N) under the captions to judge them by:
        E_class[label] + W ctx, with ctx the object's context in `text`. They do not depend on the
        image, so a real and a generated image of one layout share them."""
        context = self.object_attention(self.class_query(labels), text.tokens, text.padding_mask)  # (B, N, C)
        return self.class_projection(labels) + self.context_projection(context)

    def logits(self, features: Tensor, conditioning: Tensor) -> Tensor:
        """Logits (B, N) of object features (B, N, C): u(f) + <f, conditioning>, the conditioning (B, N, C)
        from `conditioning`."""
        return self.unconditional(features).squeeze(-1) + (features * conditioning).sum(dim=-1)


class ImageGANDiscriminator(nn.Module):
    """The stage's discriminators: one `PatchDiscriminator` per generator stage, one `ObjectDiscriminator`."""

    def __init__(self, patch: list[PatchDiscriminator], objects: ObjectDiscriminator) -> None:
        super().__init__()
        self.patch = nn.ModuleList(patch)
        self.objects = objects
