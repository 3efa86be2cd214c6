"""The `image` stage: Obj-GAN's generator trained against patch and object-wise discriminators (GANModule).

`t2i fit --config configs/t2i/shapes_image.yaml` trains it on batches of `CocoLayoutDataModule`
(image, caption, ground-truth boxes, labels and masks). The caption is encoded by a frozen CLIP text
tower (`clip_path`, e.g. the `clip` stage's export); its weights are saved in the checkpoint, so
`t2i.TextToImage.from_checkpoint` needs no other file for the text. Losses (hinge by default):

    D: per stage   L(D_u(x), D_u(G)) + L(D_c(x, s), [D_c(G, s), D_c(x, s')])
       objects     lambda_object * L(D_o(x, l, s), [D_o(G, l, s), D_o(x, l, s')])
    G: per stage   g(D_u(G)) + g(D_c(G, s)),  objects  lambda_object * g(D_o(G, l, s))

with s' the caption of another image (mismatched-caption negatives, AttnGAN / Obj-GAN) and l the
object labels. `sample` uses the EMA generator.

No step waits for the GPU: the captions are tokenised (and paired with mismatched ones) on the host
before the batch goes to the device (`on_before_batch_transfer`), the object D scores every object
slot and the losses mask the padding out (`masked_d_loss`, `masked_g_loss`) instead of selecting
the real objects, whose count the host would have to read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import UserError
from ganforge.losses import masked_d_loss, masked_g_loss
from ganforge.media import ImageMedia, LabeledBox
from ganforge.module import GANModule
from ganforge.options import GANOptions
from t2i.data.coco import PAD_LABEL_NAME
from t2i.data.shapes_scenes import SHAPES
from t2i.host_inputs import HostInputs
from t2i.models.image import (
    ImageGANDiscriminator,
    ImageGenerator,
    ObjectDiscriminator,
    PatchDiscriminator,
)
from t2i.models.layout.mask_generator import box_indicator
from t2i.models.phrases import phrase_captions
from t2i.models.text import TextFeatures, TextTowerShape, build_text_encoder, tower_hparams

SAMPLE_IMAGES = 8


def conditional_d_loss(
    d_loss: Callable[[Tensor, Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    mismatched: Tensor,
    present: Tensor | None = None,
    mismatched_present: Tensor | None = None,
) -> Tensor:
    """D loss of a text-conditional critic: matching real pairs are positives; fakes and real
    images under a mismatched caption are negatives, weighted equally (AttnGAN's (fake + wrong) / 2).

    Logits of any shape; `d_loss(real, fake)` is a pair loss such as `ganforge.losses.hinge_d`.
    With masks (bool, broadcastable to the logits) only `present` real and fake logits and
    `mismatched_present` mismatched ones count (`masked_d_loss`, no host sync).
    """
    if present is None and mismatched_present is None:
        return d_loss(real.flatten(), torch.cat([fake.flatten(), mismatched.flatten()]))
    present = torch.ones_like(real, dtype=torch.bool) if present is None else present.expand_as(real)
    wrong = (
        torch.ones_like(mismatched, dtype=torch.bool) if mismatched_present is None else mismatched_present
    )
    negatives = torch.cat([fake.flatten(), mismatched.flatten()])
    negatives_present = torch.cat([present.expand_as(fake).flatten(), wrong.expand_as(mismatched).flatten()])
    return masked_d_loss(d_loss, real, present, negatives, negatives_present)


def patch_logits(critic: nn.Module, images: Tensor, sentence: Tensor) -> Tensor:
    """Unconditional plus text-conditional logits of one patch D on images (B, 3, H, W): the critic
    whose gradient the core's penalties (R1, WGAN-GP) constrain."""
    features = critic.features(images)[1]
    return critic.logits(features) + critic.logits(features, sentence)


def mismatched_captions(captions: list[str]) -> tuple[Tensor, Tensor]:
    """Mismatched-caption pairing of a batch: row i is judged against caption `other[i]` = i + 1 (cyclic).

    Returns `other` (B,) long and `valid` (B,) bool: False where the two texts are equal (or B = 1),
    so a negative never repeats its own caption.
    """
    n = len(captions)
    other = (torch.arange(n) + 1) % n
    valid = torch.tensor([captions[i] != captions[(i + 1) % n] for i in range(n)], dtype=torch.bool)
    return other, valid


def select_text(text: TextFeatures, index: Tensor) -> TextFeatures:
    """The captions `index` (K,) of `text`."""
    return TextFeatures(text.sentence[index], text.tokens[index], text.padding_mask[index])


def batch_masks(batch: Mapping[str, Any], side: int) -> Tensor:
    """Object masks (B, N, side, side): the batch's masks, or filled boxes when it carries none."""
    masks = batch["masks"]
    if masks.numel() == 0 or masks.shape[-1] == 0:
        return box_indicator(batch["boxes"], side, side)
    return masks


class ImageGAN(HostInputs, GANModule):
    """Text + layout -> image GAN (Obj-GAN generator, patch + object-wise D, hinge, EMA).

    Args:
        class_names: object classes in category-id order, without the padding class (shapes: circle,
            square, triangle, diamond; COCO: the 80 names); must match the data.
        image_size: side of the final image; equal to the datamodule's `image_size`.
        clip_path: local CLIP file (OpenAI archive or the clip stage's clip.pt) whose text tower,
            frozen, encodes the captions; None builds a random frozen tower of the text_* sizes
            (tests). The checkpoint holds the tower's weights, so it loads without this file.
        text_embed_dim, text_context_length, text_width, text_layers: sizes of a random tower.
        stages: generator stages (1: one image; 2: 64 -> 128; 3: 64 -> 128 -> 256).
        g_widths: generator stage-0 channels from 4x4 up (see `ImageGenerator`).
        refine_width: channels of the later stages.
        latent_dim, class_dim, context_dim: sizes of z, class embeddings and object contexts.
        g_spectral_norm: spectral norm in G (D always has it).
        phrase_context: G's and the object-wise D's object attention read the caption tokens through
            a bidirectional GRU, so each noun's feature can carry its own adjectives (Obj-GAN's bi-LSTM).
        phrase_grounding: each object's attention (G's and the object-wise D's) reads only its own
            phrase of the caption, encoded alone (`t2i.models.phrases`, as GLIGEN's grounding phrases): "a
            red circle" | "left of a blue circle"; objects whose class name the caption lacks read
            all of it.
        d_widths: channels of each stage's patch D (one halving per entry, the first is the stem).
        object_widths: 3 channel counts of the object-wise D (on the last patch D's stem features).
        roi_size: side of the object D's ROI crops.
        lambda_object: weight of the object-wise D terms.
        layout_checkpoint: the layout stage checkpoint `TextToImage.from_checkpoint` pairs with this
            image stage (not used in training); None: pass one to `from_checkpoint` or give layouts.
        gan: the core options (`GANOptions`); `gp_weight` and `r1_weight` constrain each patch D.
    """

    family = "t2i-image"

    def __init__(
        self,
        class_names: list[str] = list(SHAPES),  # noqa: B006, B008 - plain list for hparams
        image_size: int = 64,
        clip_path: str | None = None,
        text_embed_dim: int = 64,
        text_context_length: int = 32,
        text_width: int = 64,
        text_layers: int = 2,
        stages: int = 1,
        g_widths: list[int] = [256, 128, 64, 32, 16],  # noqa: B006
        refine_width: int = 32,
        latent_dim: int = 64,
        class_dim: int = 64,
        context_dim: int = 64,
        g_spectral_norm: bool = True,
        phrase_context: bool = False,
        phrase_grounding: bool = False,
        d_widths: list[int] = [32, 64, 128, 256],  # noqa: B006
        object_widths: list[int] = [64, 128, 256],  # noqa: B006
        roi_size: int = 8,
        lambda_object: float = 1.0,
        layout_checkpoint: str | None = None,
        gan: GANOptions = GANOptions(),
    ) -> None:
        if not class_names:
            raise UserError("image stage: class_names is empty; expected the dataset's category names")
        if lambda_object < 0:
            raise UserError(f"image stage: lambda_object={lambda_object}; expected >= 0")
        tower = TextTowerShape(text_embed_dim, text_context_length, text_width, text_layers)
        text = build_text_encoder(clip_path, tower, trainable=False)
        num_classes = len(class_names) + 1
        generator = ImageGenerator(
            num_classes=num_classes,
            token_dim=text.width,
            sentence_dim=text.embed_dim,
            image_size=image_size,
            stages=stages,
            widths=g_widths,
            refine_width=refine_width,
            latent_dim=latent_dim,
            class_dim=class_dim,
            context_dim=context_dim,
            use_sn=g_spectral_norm,
            phrases=phrase_context,
        )
        patch = [
            PatchDiscriminator(d_widths[: _patch_depth(side, len(d_widths))], text.embed_dim)
            for side in generator.stage_sizes
        ]
        objects = ObjectDiscriminator(
            d_widths[0], object_widths, num_classes, text.width, roi_size, phrases=phrase_context
        )
        super().__init__(generator, ImageGANDiscriminator(patch, objects), gan)
        self.save_hyperparameters()
        # The checkpoint must rebuild the tower without the CLIP file: record its sizes instead.
        self.hparams.update(tower_hparams(text))
        self.text_encoder = text.eval()
        self.class_names = [PAD_LABEL_NAME, *class_names]
        self.lambda_object = lambda_object

    def data_settings(self) -> dict[str, Any]:
        """The data's categories (without the padding class) and image side, checked in `setup`."""
        return {"class_names": self.class_names[1:], "image_size": self.generator.image_size}

    # ------------------------------------------------------------------ pieces
    def train(self, mode: bool = True) -> ImageGAN:
        super().train(mode)
        self.text_encoder.eval()  # frozen: never in training mode
        return self

    def encode(self, captions: list[str]) -> TextFeatures:
        """Frozen text features of captions (B): sentence (B, D), tokens (B, L, W), padding_mask (B, L), with
        L the longest caption's token count (`TextFeatures.trim`)."""
        tokens, used = self.text_encoder.tokens_of(list(captions))
        return self._encode_tokens(tokens.to(self.device), used)

    def _encode_tokens(self, tokens: Tensor, used: int) -> TextFeatures:
        """Frozen text features of token ids (B, L) whose captions span at most `used` tokens, kept to
        those columns (`TextFeatures.trim`): sentence (B, D), tokens (B, used, W), padding_mask (B, used)."""
        with torch.no_grad():
            return self.text_encoder(tokens, used).trim(used)

    def phrase_tokens(
        self,
        captions: list[str],
        labels: Tensor,
        object_mask: Tensor,
        colors: list[list[str]] | None = None,
    ) -> tuple[Tensor, int] | None:
        """Token ids (B * N, L) of every object slot's phrase (`t2i.models.phrases.phrase_captions`) and their
        used length, made on the host; None without `phrase_grounding`. labels, object_mask (B, N);
        colors: per caption, the objects' colour attributes (they tell two circles apart)."""
        if not self.hparams.phrase_grounding:
            return None
        return self.text_encoder.tokens_of(
            phrase_captions(captions, labels, object_mask, self.class_names, colors)
        )

    def encode_phrases(self, tokens: Tensor, used: int, slots: int) -> TextFeatures:
        """Frozen features of phrase tokens (B * N, L), per object: sentence (B, N, D), tokens
        (B, N, used, W), padding_mask (B, N, used).

        Only the first `used` token columns are kept (`TextFeatures.trim`; the longest phrase's, read on
        the host), so the object attentions and the phrase GRU run over a few tokens instead of the
        whole context.
        """
        text = self._encode_tokens(tokens, used)
        per_object = (t.unflatten(0, (-1, slots)) for t in (text.sentence, text.tokens, text.padding_mask))
        return TextFeatures(*per_object)

    def phrase_features(
        self,
        captions: list[str],
        labels: Tensor,
        object_mask: Tensor,
        colors: list[list[str]] | None = None,
    ) -> TextFeatures | None:
        """`encode_phrases` of `phrase_tokens` on this module's device (sampling and the pipeline)."""
        tokens = self.phrase_tokens(captions, labels, object_mask, colors)
        if tokens is None:
            return None
        return self.encode_phrases(tokens[0].to(self.device), tokens[1], labels.shape[1])

    def host_inputs(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """What a step needs of a batch's captions (B), made on the host (`t2i.host_inputs`): `tokens`
        (B, L) and `used_tokens` (int) for the frozen encoder, `mismatch_other` (B,) long and
        `mismatch_valid` (B,) bool for the mismatched-caption negatives (`mismatched_captions`); with
        `phrase_grounding`, `phrase_tokens` (B * N, L) and `phrase_used` of each object's phrase, and
        `mismatch_phrase_tokens` / `mismatch_phrase_used` of its phrase in the mismatched caption."""
        captions = list(batch["caption"])
        tokens, used = self.text_encoder.tokens_of(captions)
        other, valid = mismatched_captions(captions)
        inputs = {"tokens": tokens, "used_tokens": used, "mismatch_other": other, "mismatch_valid": valid}
        labels, present = batch["labels"], batch["object_mask"]
        phrases = self.phrase_tokens(captions, labels, present, batch.get("colors"))
        if phrases is not None:
            wrong = self.phrase_tokens([captions[i] for i in other.tolist()], labels, present)
            inputs |= {"phrase_tokens": phrases[0], "phrase_used": phrases[1]}
            inputs |= {"mismatch_phrase_tokens": wrong[0], "mismatch_phrase_used": wrong[1]}
        return inputs

    def _batch_phrases(self, batch: Mapping[str, Any], prefix: str = "") -> TextFeatures | None:
        """Per-object phrase features of a batch carrying `host_inputs` (prefix "mismatch_": of the
        mismatched captions), None without `phrase_grounding`."""
        if f"{prefix}phrase_tokens" not in batch:
            return None
        slots = batch["labels"].shape[1]
        return self.encode_phrases(batch[f"{prefix}phrase_tokens"], batch[f"{prefix}phrase_used"], slots)

    def _batch_text(self, batch: Mapping[str, Any]) -> TextFeatures:
        """Frozen text features of a batch carrying `host_inputs`, trimmed to its longest caption's tokens."""
        return self._encode_tokens(batch["tokens"], batch["used_tokens"])

    def _generate(
        self, batch: Mapping[str, Any], text: TextFeatures, phrases: TextFeatures | None
    ) -> list[Tensor]:
        """The live generator's images, one per stage, for the batch's captions and true layouts."""
        masks = batch_masks(batch, self.generator.image_size)
        z = self.noise(len(batch["caption"]), self.generator.latent_dim)
        return self.generator(z, text, batch["labels"], masks, batch["object_mask"], phrases)

    def _reals(self, images: Tensor) -> list[Tensor]:
        """Real images resized to every stage's side (B, 3, s, s)."""
        return [
            images
            if s == images.shape[-1]
            else F.interpolate(images, size=(s, s), mode="bilinear", antialias=True)
            for s in self.generator.stage_sizes
        ]

    # ------------------------------------------------------------------ GANModule interface
    def discriminator_loss(self, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """Patch D (unconditional + conditional with mismatched captions) per stage plus object-wise D."""
        batch = self._with_host_inputs(batch)
        text = self._batch_text(batch)
        valid = batch["mismatch_valid"]
        wrong = select_text(text, batch["mismatch_other"])
        phrases = self._batch_phrases(batch)
        with torch.no_grad():
            fakes = self._generate(batch, text, phrases)
        loss, logs = torch.zeros((), device=self.device), {}
        reals = self._reals(batch["image"])
        for stage, (critic, real, fake) in enumerate(zip(self.discriminator.patch, reals, fakes)):
            (stem_real, f_real), (stem_fake, f_fake) = critic.features(real), critic.features(fake)
            real_c, fake_c = critic.logits(f_real, text.sentence), critic.logits(f_fake, text.sentence)
            wrong_c = critic.logits(f_real, wrong.sentence)
            uncond = self.d_adversarial(critic.logits(f_real), critic.logits(f_fake))
            cond = conditional_d_loss(
                self.d_adversarial, real_c, fake_c, wrong_c, mismatched_present=valid[:, None]
            )
            penalty, penalty_logs = self.d_penalties(
                partial(patch_logits, critic, sentence=text.sentence), real, fake
            )
            loss = loss + uncond + cond + penalty
            logs |= {f"d{stage}_uncond": uncond.detach(), f"d{stage}_cond": cond.detach()}
            logs |= {f"d{stage}_{key}": value for key, value in penalty_logs.items()}
            logs |= {f"d{stage}_real": real_c.detach().mean(), f"d{stage}_fake": fake_c.detach().mean()}
        if self.lambda_object > 0:
            wrong_phrases = self._batch_phrases(batch, "mismatch_")
            object_text = (text, wrong) if phrases is None else (phrases, wrong_phrases)
            obj = self._object_d_loss(batch, *object_text, stem_real, stem_fake, valid)
            loss = loss + self.lambda_object * obj
            logs["d_object"] = obj.detach()
        return loss, logs

    def _object_d_loss(
        self,
        batch: Mapping[str, Any],
        text: TextFeatures,
        wrong: TextFeatures,
        stem_real: Tensor,
        stem_fake: Tensor,
        valid: Tensor,
    ) -> Tensor:
        """Object D loss on the last stage's stem features: real objects positive; generated objects and
        real objects under a mismatched caption (rows `valid`) negative. Every slot is scored; the
        loss counts those of `object_mask` (0 for a batch without objects). `text` and `wrong` are
        the captions (B rows) or, with `phrase_grounding`, each object's phrase in them (B, N)."""
        critic, labels, present, boxes = (
            self.discriminator.objects,
            batch["labels"],
            batch["object_mask"],
            batch["boxes"],
        )
        f_real, f_fake = critic.features(stem_real, boxes), critic.features(stem_fake, boxes)
        matched = critic.conditioning(labels, text)  # one layout and caption: real and fake share it
        real_o, fake_o = critic.logits(f_real, matched), critic.logits(f_fake, matched)
        wrong_o = critic.logits(f_real, critic.conditioning(labels, wrong))
        return conditional_d_loss(
            self.d_adversarial, real_o, fake_o, wrong_o, present, present & valid[:, None]
        )

    def generator_loss(self, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """g(D_u) + g(D_c) per stage plus lambda_object * g(D_o) on the generated images."""
        batch = self._with_host_inputs(batch)
        text, phrases = self._batch_text(batch), self._batch_phrases(batch)
        fakes = self._generate(batch, text, phrases)
        loss, logs = torch.zeros((), device=self.device), {}
        for stage, (critic, fake) in enumerate(zip(self.discriminator.patch, fakes)):
            stem, features = critic.features(fake)
            adv = self.g_adversarial(critic.logits(features)) + self.g_adversarial(
                critic.logits(features, text.sentence)
            )
            loss = loss + adv
            logs[f"g{stage}_patch"] = adv.detach()
        if self.lambda_object > 0:
            critic = self.discriminator.objects
            features = critic.features(stem, batch["boxes"])
            conditioning = critic.conditioning(batch["labels"], text if phrases is None else phrases)
            logits = critic.logits(features, conditioning)
            obj = masked_g_loss(self.g_adversarial, logits, batch["object_mask"])
            loss = loss + self.lambda_object * obj
            logs["g_object"] = obj.detach()
        return loss, logs

    def batch_size(self, batch: Mapping[str, Any]) -> int:
        return len(batch["caption"])

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(self, batch: Mapping[str, Any], rng: torch.Generator | None = None) -> dict[str, ImageMedia]:
        """{"samples": EMA-generator images for the batch's captions and ground-truth layouts, with boxes}."""
        cut = {k: v[:SAMPLE_IMAGES] if isinstance(v, (Tensor, list)) else v for k, v in batch.items()}
        text = self.encode(cut["caption"])
        masks = batch_masks(cut, self.generator.image_size)
        z = self.noise(len(cut["caption"]), self.generator.latent_dim, rng=rng)
        phrases = self.phrase_features(
            list(cut["caption"]), cut["labels"], cut["object_mask"], cut.get("colors")
        )
        images = self.ema.model(z, text, cut["labels"], masks, cut["object_mask"], phrases)[-1]
        return {"samples": ImageMedia(images.float().cpu(), list(cut["caption"]), self.labeled_boxes(cut))}

    def labeled_boxes(self, batch: Mapping[str, Any]) -> list[list[LabeledBox]]:
        """The real objects of a batch as `LabeledBox` lists (B)."""
        out = []
        for boxes, labels, present in zip(
            batch["boxes"].tolist(), batch["labels"].tolist(), batch["object_mask"].tolist()
        ):
            out.append(
                [LabeledBox(self.class_names[c], *box) for box, c, p in zip(boxes, labels, present) if p]
            )
        return out


def _patch_depth(side: int, depth: int) -> int:
    """Down-sampling blocks of a stage's patch D: `depth`, but leaving at least 2x2 patches."""
    return max(1, min(depth, side.bit_length() - 2))
