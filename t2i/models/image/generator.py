"""The image generator of the t2i image stage: Obj-GAN (Li et al. 2019) conditioning on a BigGAN-style body.

Inputs: noise z, the caption (sentence embedding + token features) and a layout (class labels and
one mask per object). Each object's vector is [class embedding ; object context], the context coming
from the object-driven attention of its class embedding over the caption tokens; every
normalisation (`LayoutNorm`) paints per-object parameters of that vector into the object's mask, so
"red" reaches exactly the pixels of the circle it describes.
AttnGAN word attention over image regions runs at the end of every stage.

Stages (AttnGAN / Obj-GAN): stage 0 grows from 4x4 to `image_size / 2**(stages - 1)`, each later
stage doubles the side; every stage emits an image (its own discriminator judges it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import UserError
from t2i.models.image.attention import ObjectTextAttention, WordRegionAttention
from t2i.models.image.layers import GBlock, Layout, conv, num_groups, sn
from t2i.models.text import TextFeatures

BASE_SIDE = 4  # stage 0 starts from a 4x4 map (BigGAN)


def resize_masks(masks: Tensor, side: int) -> Tensor:
    """Masks (B, N, H, W) in [0, 1] -> (B, N, side, side): area average down, bilinear up."""
    if masks.shape[-1] == side and masks.shape[-2] == side:
        return masks
    mode = "area" if side < masks.shape[-1] else "bilinear"
    return F.interpolate(masks, size=(side, side), mode=mode)


class ToRGB(nn.Module):
    """Features (B, C, H, W) -> image (B, 3, H, W) in [0, 1]: GroupNorm, ReLU, conv3, (tanh + 1) / 2."""

    def __init__(self, channels: int, use_sn: bool = True) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(num_groups(channels), channels)
        self.conv = conv(channels, 3, use_sn=use_sn)

    def forward(self, x: Tensor) -> Tensor:
        return (torch.tanh(self.conv(F.relu(self.norm(x)))) + 1) / 2


class ImageGenerator(nn.Module):
    """G(z, caption, layout) -> one image per stage.

    Args:
        num_classes: labels including the padding label 0.
        token_dim: W, width of the caption's token features.
        sentence_dim: D, width of the sentence embedding.
        image_size: side of the last stage's image.
        stages: 1 (CPU configs), 2 (64 -> 128) or 3 (64 -> 128 -> 256).
        widths: channels of stage 0 from 4x4 to its output side, so
            `4 * 2**(len(widths) - 1) == image_size / 2**(stages - 1)`.
        refine_width: channels of every later stage.
        latent_dim: size of z.
        class_dim: width of the learned class embeddings.
        context_dim: width of each object's caption context.
        use_sn: spectral norm on the convs and the input linear layer.
        phrases: object attention reads the tokens through a bidirectional GRU (`PhraseContext`).
    """

    def __init__(
        self,
        *,
        num_classes: int,
        token_dim: int,
        sentence_dim: int,
        image_size: int = 64,
        stages: int = 1,
        widths: Sequence[int] = (256, 128, 64, 32, 16),
        refine_width: int = 32,
        latent_dim: int = 64,
        class_dim: int = 64,
        context_dim: int = 64,
        use_sn: bool = True,
        phrases: bool = False,
    ) -> None:
        super().__init__()
        widths = list(widths)
        first_side = image_size // 2 ** (stages - 1)
        if stages < 1 or first_side * 2 ** (stages - 1) != image_size or len(widths) < 1:
            raise UserError(f"image generator: image_size={image_size} does not split into stages={stages}")
        if BASE_SIDE * 2 ** (len(widths) - 1) != first_side:
            raise UserError(
                f"image generator: widths={widths} grow 4x4 to {BASE_SIDE * 2 ** (len(widths) - 1)}, but "
                f"stage 0 must end at {first_side} (image_size={image_size}, stages={stages})"
            )
        self.latent_dim, self.image_size, self.stages = latent_dim, image_size, stages
        layout_dim = class_dim + context_dim
        self.class_embedding = nn.Embedding(num_classes, class_dim, padding_idx=0)
        self.object_attention = ObjectTextAttention(class_dim, token_dim, context_dim, phrases=phrases)
        self.input = sn(nn.Linear(latent_dim + sentence_dim, widths[0] * BASE_SIDE**2), use_sn)
        self.first_width = widths[0]
        self.blocks = nn.ModuleList(
            GBlock(cin, cout, layout_dim, use_sn=use_sn) for cin, cout in zip(widths[:-1], widths[1:])
        )
        stage_widths = [widths[-1]] + [refine_width] * (stages - 1)
        self.refine = nn.ModuleList(
            GBlock(cin, cout, layout_dim, use_sn=use_sn)
            for cin, cout in zip(stage_widths[:-1], stage_widths[1:])
        )
        self.word_attention = nn.ModuleList(WordRegionAttention(w, token_dim) for w in stage_widths)
        self.to_rgb = nn.ModuleList(ToRGB(w, use_sn) for w in stage_widths)

    @property
    def stage_sizes(self) -> list[int]:
        """Image side of every stage, smallest first."""
        return [self.image_size // 2 ** (self.stages - 1 - s) for s in range(self.stages)]

    def object_vectors(self, labels: Tensor, text: TextFeatures) -> Tensor:
        """[class embedding ; object context] per object (B, N, class_dim + context_dim) for labels (B, N);
        `text` is the caption (tokens (B, L, W)) or each object's phrase (tokens (B, N, P, W))."""
        classes = self.class_embedding(labels)
        return torch.cat([classes, self.object_attention(classes, text.tokens, text.padding_mask)], dim=-1)

    def layout(
        self,
        labels: Tensor,
        text: TextFeatures,
        masks: Tensor,
        object_mask: Tensor,
        phrases: TextFeatures | None = None,
    ) -> Layout:
        """Object vectors and their masks (B, N, H, W) resized to every side the blocks use."""
        sides = {BASE_SIDE * 2**i for i in range(len(self.blocks) + 1)} | set(self.stage_sizes)
        present = object_mask[:, :, None, None].to(masks.dtype)
        resized = {s: resize_masks(masks, s) * present for s in sorted(sides)}
        return Layout(self.object_vectors(labels, text if phrases is None else phrases), resized)

    def forward(
        self,
        z: Tensor,
        text: TextFeatures,
        labels: Tensor,
        masks: Tensor,
        object_mask: Tensor,
        phrases: TextFeatures | None = None,
    ) -> list[Tensor]:
        """Images in [0, 1], one per stage: [(B, 3, s, s) for s in stage_sizes].

        Args:
            z: noise (B, latent_dim).
            text: sentence (B, D), tokens (B, L, W), padding_mask (B, L).
            labels: object classes (B, N), 0 for padding.
            masks: object masks (B, N, H, W) in [0, 1] at any size (boxes filled with 1 work too).
            object_mask: (B, N) bool, True for real objects.
            phrases: each object's own phrase (`t2i.models.phrases`), tokens (B, N, P, W) and padding_mask
                (B, N, P), read by the object attention; None: every object reads the caption (Obj-GAN).
        """
        layout = self.layout(labels, text, masks, object_mask, phrases)
        x = self.input(torch.cat([z, text.sentence], dim=1)).view(-1, self.first_width, BASE_SIDE, BASE_SIDE)
        for block in self.blocks:
            x = block(x, layout)
        images = []
        for stage in range(self.stages):
            if stage > 0:
                x = self.refine[stage - 1](x, layout)
            x = self.word_attention[stage](x, text.tokens, text.padding_mask)
            images.append(self.to_rgb[stage](x))
        return images
