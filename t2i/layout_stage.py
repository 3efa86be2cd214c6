"""The `layout` stage of t2i: Obj-GAN's box generator and shape generator (Li et al. 2019, §3.1) on GANModule.

`t2i fit --config configs/t2i/shapes_layout.yaml` trains, from one config and one optimiser
schedule:
- the box pathway (text encoder when trainable + `BoxGenerator`) by likelihood: teacher-forced
  class NLL + centre and size mixture NLL, objects taught in caption-mention order
  (`t2i.models.layout.order`), through the generator's optimiser with its own learning rate and betas;
- the `ShapeGenerator` adversarially on ground-truth boxes: an instance D per mask and a global D
  per layout (hinge loss by default), plus a mask reconstruction term (BCE against the ground
  truth cut into each box).
No training step waits for the GPU: every object slot is scored (box NLLs, masks, instance D) and
the losses weigh the padded slots 0 (`ganforge.losses.masked_mean` and its kin) instead of
selecting the real objects, whose count the host would have to read.
Validation (and `t2i test`) samples a layout per caption with the EMA generator and logs
val/object_set_accuracy, val/relation_accuracy, val/size_accuracy, val/mask_iou (masks drawn on
ground-truth boxes) and the val NLLs (`t2i.eval.layout_metrics`); `test/...` likewise.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ganforge.errors import UserError
from ganforge.losses import masked_g_loss
from ganforge.media import ImageMedia
from ganforge.module import GANModule
from ganforge.options import GANOptions
from t2i.data.coco import PAD_LABEL_NAME
from t2i.eval.layout_metrics import LayoutAccuracy, caption_sizes, mask_iou, score_layout
from t2i.host_inputs import HostInputs
from t2i.models.layout.box import Box, boxes_from_tensors
from t2i.models.layout.box_generator import BoxGenerator, BoxLosses, SampledBoxes
from t2i.models.layout.discriminators import MaskDiscriminators, layout_channels
from t2i.models.layout.draw import layout_media
from t2i.models.layout.generator import TEXT_CONDITIONING, LayoutGenerator
from t2i.models.layout.mask_generator import ShapeGenerator, crop_masks, mask_bce, paste_masks
from t2i.models.layout.order import apply_order, mention_permutation
from t2i.models.text import TextFeatures, TextTowerShape, build_text_encoder, tower_hparams

OBJECT_ORDERS = ("mention", "area")


class LayoutGAN(HostInputs, GANModule):
    """Text -> layout (classes, boxes, masks).

    Args:
        class_names: object classes in category-id order, without the padding class (shapes:
            circle, square, triangle, diamond; COCO: the 80 names); must match the data.
        max_objects: N, objects per layout (Obj-GAN: 10); equal to the datamodule's.
        clip_path: local CLIP file (OpenAI archive or the clip stage's clip.pt) whose text tower
            encodes the captions; None builds a random tower of the text_* sizes. The checkpoint
            holds the tower's weights, so it loads without this file.
        text_trainable: fine-tune (or, without clip_path, train from scratch) the text tower with
            the box likelihood; otherwise it stays frozen.
        text_conditioning: "tokens" (attention over every token feature plus the sentence) or
            "sentence" (the sentence embedding alone).
        text_embed_dim, text_context_length, text_width, text_layers: sizes of a random tower.
        box_hidden, box_layers, box_heads, box_dropout: the box generator's Transformer decoder.
        token_layers: bidirectional self-attention layers over the token features before the decoder
            reads them (CLIP's text tower is causal: a word's feature never sees the words after it).
        object_order: the order the box generator is taught to emit objects in: "mention" (first
            mention in the caption, see `t2i.models.layout.order`) or "area" (largest first, as Obj-GAN);
            `generate_layouts` returns the objects in the order taught.
        mixture_components: K of the centre and size mixtures (Obj-GAN: 5).
        size_nll_weight: weight of the size NLL in the box loss. Shapes boxes are square (w == h) and
            quantised, so the size density is very sharp and its gradients, 10x those of the centre
            term, would drown the relation signal in the shared decoder (see `BoxLosses.total`).
        box_lr, text_lr, box_betas: Adam settings of the likelihood-trained parameters.
        temperature: sampling temperature for validation and `sample` (Obj-GAN: 0.4).
        mask_size: M, side of a box-frame mask; layout_size: side of the global D's layout grid.
        shape_hidden, shape_layers, noise_dim, shape_channels: the shape generator.
        d_channels: base width of both mask discriminators.
        mask_recon_weight: weight of the BCE between generated and true box-frame masks.
        instance_d_weight, layout_d_weight: weights of the two adversarial generator terms.
        val_seed: seed of the validation samples, so epochs compare.
        gan: the core options (`GANOptions`); its g_lr and g_betas are the shape generator's.
    """

    family = "t2i-layout"

    def __init__(
        self,
        class_names: list[str],
        max_objects: int = 10,
        clip_path: str | None = None,
        text_trainable: bool = True,
        text_conditioning: str = "tokens",
        text_embed_dim: int = 64,
        text_context_length: int = 32,
        text_width: int = 64,
        text_layers: int = 2,
        box_hidden: int = 128,
        box_layers: int = 2,
        box_heads: int = 4,
        token_layers: int = 1,
        box_dropout: float = 0.1,
        object_order: str = "mention",
        mixture_components: int = 5,
        size_nll_weight: float = 0.1,
        box_lr: float = 5e-4,
        text_lr: float = 5e-4,
        box_betas: tuple[float, float] = (0.9, 0.999),
        temperature: float = 0.4,
        mask_size: int = 16,
        layout_size: int = 32,
        shape_hidden: int = 128,
        shape_layers: int = 1,
        noise_dim: int = 16,
        shape_channels: int = 64,
        d_channels: int = 32,
        mask_recon_weight: float = 10.0,
        instance_d_weight: float = 1.0,
        layout_d_weight: float = 1.0,
        val_seed: int = 0,
        gan: GANOptions = GANOptions(),
    ) -> None:
        if not class_names:
            raise UserError("LayoutGAN: class_names is empty; expected the dataset's category names")
        if text_conditioning not in TEXT_CONDITIONING:
            raise UserError(
                f"LayoutGAN: text_conditioning={text_conditioning!r}; expected one of {TEXT_CONDITIONING}"
            )
        if object_order not in OBJECT_ORDERS:
            raise UserError(f"LayoutGAN: object_order={object_order!r}; expected one of {OBJECT_ORDERS}")
        if temperature < 0:
            raise UserError(f"LayoutGAN: temperature={temperature}; expected >= 0")
        tower = TextTowerShape(text_embed_dim, text_context_length, text_width, text_layers)
        text = build_text_encoder(clip_path, tower, trainable=text_trainable)
        num_classes = len(class_names) + 1
        generator = LayoutGenerator(
            text,
            BoxGenerator(
                num_classes,
                sentence_dim=text.embed_dim,
                token_dim=text.width,
                hidden=box_hidden,
                layers=box_layers,
                heads=box_heads,
                components=mixture_components,
                max_objects=max_objects,
                use_tokens=text_conditioning == "tokens",
                token_layers=token_layers,
                dropout=box_dropout,
            ),
            ShapeGenerator(
                num_classes,
                sentence_dim=text.embed_dim,
                hidden=shape_hidden,
                noise_dim=noise_dim,
                mask_size=mask_size,
                layers=shape_layers,
                channels=shape_channels,
            ),
        )
        super().__init__(generator, MaskDiscriminators(num_classes, mask_size, layout_size, d_channels), gan)
        self.save_hyperparameters()
        # The checkpoint must rebuild the tower without the CLIP file: record its sizes instead.
        self.hparams.update(tower_hparams(text))
        self.class_names = [PAD_LABEL_NAME, *class_names]
        self.num_classes = num_classes
        self.eval_metrics = LayoutAccuracy()

    # ------------------------------------------------------------------ data checks
    def data_settings(self) -> dict[str, Any]:
        """The data's categories (without the padding class) and objects per layout, checked in `setup`."""
        return {"class_names": self.class_names[1:], "max_objects": self.hparams.max_objects}

    # ------------------------------------------------------------------ shared pieces
    def batch_size(self, batch: dict[str, Any]) -> int:
        return len(batch["caption"])

    def host_inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        """What a step reads of a host batch, made there (`t2i.host_inputs`):
        `tokens` (B, L) and `used_tokens` (int) of the captions; with object_order "mention", the
        slot order (B, N) long that puts each row's objects in mention order (`mention_order`)."""
        tokens, used = self.generator.text.tokens_of(list(batch["caption"]))
        inputs: dict[str, Any] = {"tokens": tokens, "used_tokens": used}
        if self.hparams.object_order == "mention":
            inputs["mention_order"] = mention_permutation(
                batch["caption"], batch["labels"], batch["object_mask"], batch["colors"], self.class_names
            )
        return inputs

    def _batch_text(self, batch: dict[str, Any]) -> TextFeatures:
        """The generator's text features of a batch carrying `host_inputs`."""
        return self.generator.text(batch["tokens"], batch["used_tokens"])

    @staticmethod
    def _true_layout(batch: dict[str, Any]) -> SampledBoxes:
        return SampledBoxes(batch["labels"], batch["boxes"], batch["object_mask"])

    def _mask_pairs(
        self, net: LayoutGenerator, batch: dict[str, Any], text: TextFeatures
    ) -> tuple[Tensor, Tensor, SampledBoxes]:
        """Real and generated box-frame masks (B, N, M, M) on the ground-truth layout."""
        layout = self._true_layout(batch)
        fake = net.masks(text, layout, net.noise(layout))
        real = crop_masks(batch["masks"], batch["boxes"], self.hparams.mask_size)
        return real, fake, layout

    def box_losses(self, net: LayoutGenerator, batch: dict[str, Any], text: TextFeatures) -> BoxLosses:
        """Teacher-forced box NLLs of the batch's layouts, objects in `object_order`."""
        labels, boxes = batch["labels"], batch["boxes"]
        if self.hparams.object_order == "mention":
            labels, boxes = apply_order(labels, boxes, self._with_host_inputs(batch)["mention_order"])
        return net.boxes.loss(text, labels, boxes, batch["object_mask"])

    def _layout_canvas(self, masks: Tensor, layout: SampledBoxes) -> Tensor:
        """Per-class layout channels (B, C, S, S) of box-frame masks pasted at the global D's size."""
        size = self.hparams.layout_size
        return layout_channels(paste_masks(masks, layout.boxes, size, size), layout.labels, self.num_classes)

    # ------------------------------------------------------------------ GANModule interface
    def discriminator_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        batch = self._with_host_inputs(batch)
        with torch.no_grad():
            text = self._batch_text(batch)
            real, fake, layout = self._mask_pairs(self.generator, batch, text)
        labels, d = layout.labels.flatten(), self.discriminator
        inst_loss, inst_logs = self.adversarial_d_loss(
            lambda m: d.instance(m, labels),
            real.flatten(0, 1),
            fake.flatten(0, 1),
            mask=layout.object_mask.flatten(),
        )
        glob_loss, glob_logs = self.adversarial_d_loss(
            d.layout, self._layout_canvas(real, layout), self._layout_canvas(fake, layout)
        )
        logs = {f"instance_{k}": v for k, v in inst_logs.items()} | {
            f"layout_{k}": v for k, v in glob_logs.items()
        }
        return inst_loss + glob_loss, logs

    def generator_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        batch = self._with_host_inputs(batch)
        text = self._batch_text(batch)
        box = self.box_losses(self.generator, batch, text)
        real, fake, layout = self._mask_pairs(self.generator, batch, text)
        objects = layout.object_mask
        inst_logits = self.discriminator.instance(fake.flatten(0, 1), layout.labels.flatten())
        inst_adv = masked_g_loss(self.g_adversarial, inst_logits, objects.flatten())
        glob_adv = self.g_adversarial(self.discriminator.layout(self._layout_canvas(fake, layout)))
        recon = mask_bce(fake, real, objects)
        hp = self.hparams
        loss = (
            box.total(hp.size_nll_weight)
            + hp.instance_d_weight * inst_adv
            + hp.layout_d_weight * glob_adv
            + hp.mask_recon_weight * recon
        )
        logs = {
            "class_nll": box.class_nll.detach(),
            "centre_nll": box.centre_nll.detach(),
            "size_nll": box.size_nll.detach(),
            "g_instance": inst_adv.detach(),
            "g_layout": glob_adv.detach(),
            "mask_bce": recon.detach(),
        }
        return loss, logs

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        hp = self.hparams
        # fused: one kernel for all tensors; the loop version dominates small-model steps on CPU.
        d_opt = torch.optim.Adam(
            self.discriminator.parameters(), lr=self.d_lr, betas=self.d_betas, fused=True
        )
        text_params = [p for p in self.generator.text.parameters() if p.requires_grad]
        groups = [
            {
                "params": list(self.generator.boxes.parameters()),
                "lr": hp.box_lr,
                "betas": tuple(hp.box_betas),
            },
            {"params": list(self.generator.shapes.parameters()), "lr": self.g_lr, "betas": self.g_betas},
        ]
        if text_params:
            groups.append({"params": text_params, "lr": hp.text_lr, "betas": tuple(hp.box_betas)})
        return [d_opt, torch.optim.Adam(groups, fused=True)]

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate_layouts(
        self,
        captions: list[str],
        rng: torch.Generator | None = None,
        temperature: float | None = None,
    ) -> list[list[Box]]:
        """One layout per caption from the EMA generator: `Box`es with box-frame masks, in the order
        the generator drew them (the caption's mention order with object_order "mention"), which
        the image stage's `phrase_grounding` reads to tell two objects of one class apart.

        Draws use `rng` only (on this module's device); `temperature` defaults to the
        configured one.
        """
        net = self.ema.model
        text = net.encode(captions)
        tau = self.hparams.temperature if temperature is None else temperature
        layout = net.boxes.sample(text, tau, rng)
        masks = net.masks(text, layout, net.noise(layout, rng))  # drawn largest first, as trained
        layouts = []
        for b in range(len(captions)):
            boxes = boxes_from_tensors(
                layout.labels[b], layout.boxes[b], layout.object_mask[b], self.class_names, masks[b]
            )
            steps = layout.emitted[b, : len(boxes)].tolist()  # real objects are the slots' prefix
            layouts.append([box for _, box in sorted(zip(steps, boxes), key=lambda pair: pair[0])])
        return layouts

    def _generator_on_device(self, offset: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(self.hparams.val_seed + offset)

    def sample(self, batch: dict[str, Any]) -> dict[str, ImageMedia]:
        """Layouts drawn for the batch's captions next to the ground truth (tinted masks, labelled boxes)."""
        captions = list(batch["caption"])
        layouts = self.generate_layouts(captions, self._generator_on_device(0))
        true_masks = crop_masks(batch["masks"], batch["boxes"], self.hparams.mask_size)
        truth = [
            boxes_from_tensors(
                batch["labels"][b],
                batch["boxes"][b],
                batch["object_mask"][b],
                self.class_names,
                true_masks[b],
            )
            for b in range(len(captions))
        ]
        return {"layouts": layout_media(layouts, captions), "layouts_truth": layout_media(truth, captions)}

    # ------------------------------------------------------------------ validation and test
    def _eval_step(self, batch: dict[str, Any], batch_idx: int, prefix: str) -> None:
        """NLLs of the true layouts, metrics of sampled layouts and of masks on the true boxes (EMA G)."""
        net = self.ema.model
        text = net.encode(batch["caption"])
        box = self.box_losses(net, batch, text)
        size = self.batch_size(batch)
        nlls = {"class_nll": box.class_nll, "centre_nll": box.centre_nll, "size_nll": box.size_nll}
        self.log_dict({f"{prefix}/{k}": v for k, v in nlls.items()}, batch_size=size, sync_dist=True)
        self.log(f"{prefix}/box_nll", box.total(), batch_size=size, sync_dist=True, prog_bar=True)

        rng = self._generator_on_device(1 + batch_idx)
        sampled = net.boxes.sample(text, self.hparams.temperature, rng)
        scores = []
        for b in range(size):
            real = batch["object_mask"][b]
            true_labels = batch["labels"][b][real].tolist()
            keep = sampled.object_mask[b]
            names = [self.class_names[label] for label in true_labels]
            scores.append(
                score_layout(
                    sampled.labels[b][keep].tolist(),
                    sampled.boxes[b][keep].tolist(),
                    true_labels,
                    batch["relations"][b],
                    caption_sizes(batch["caption"][b], batch["colors"][b], names),
                )
            )
        # Masks on the ground-truth boxes, pasted at the data's mask resolution, against the truth.
        layout = self._true_layout(batch)
        masks = net.masks(text, layout, net.noise(layout, rng))
        height, width = batch["masks"].shape[-2:]
        pasted = paste_masks(masks, layout.boxes, height, width)
        ious = mask_iou(pasted[layout.object_mask], batch["masks"][layout.object_mask])
        self.eval_metrics.update(scores, ious)

    def _eval_epoch_end(self, prefix: str) -> None:
        values = self.eval_metrics.compute()
        self.eval_metrics.reset()
        self.log_dict({f"{prefix}/{k}": v for k, v in values.items()}, prog_bar=True)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, batch_idx, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, batch_idx, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")
