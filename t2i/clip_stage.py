"""The `clip` stage: a small CLIP (Radford et al. 2021) trained from scratch, contrastively, on our data.

`t2i fit --config configs/t2i/shapes_clip.yaml` trains `clip.model.CLIP` (a ViT image tower, the
real BPE tokenizer) with the symmetric InfoNCE loss and, when fitting ends, writes a plain CLIP
state dict (`export_path`) that `clip.load(path, jit=False)`, `t2i.models.clip_model.load_clip` and
`TextEncoder.from_pretrained` load. Validation logs `val/r_precision` (AttnGAN protocol, 100
candidates). `t2i export-clip --ckpt_path last.ckpt --out clip.pt` exports any training checkpoint.

Under DDP each rank's pairs are contrasted with the whole global batch (`t2i.models.contrastive`).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.checkpoint import load_checkpoint, restore, stamp_header
from t2i.eval.retrieval import r_precision
from t2i.models.clip_model import build_clip, encode_images, save_clip, tokenize
from t2i.models.contrastive import symmetric_infonce
from t2i.models.text import text_features

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clamps the learned temperature at 100


class ContrastiveCLIP(pl.LightningModule):
    """Small CLIP trained with the symmetric contrastive loss on (image, caption) batches.

    Args:
        embed_dim: D, the joint embedding width.
        image_resolution: side the image tower sees (inputs are resized to it).
        vision_width, vision_layers: image tower; 4 block counts give CLIP's ModifiedResNet (any even
            width; learns fast on small data), an int gives a ViT (width a multiple of 64).
        vision_patch_size: ViT patch side (None for a ResNet tower).
        context_length: L, tokens per caption (shapes captions need <= 30; OpenAI CLIP uses 77).
        text_width, text_layers: text transformer (width a multiple of 64).
        lr, weight_decay, warmup_steps: AdamW with linear warm-up then cosine decay to 0 at
            trainer.max_steps; gains, biases, embeddings and the temperature get no decay.
        export_path: where to write the CLIP state dict at the end of `fit`;
            None means `<trainer.default_root_dir>/clip.pt`.
        r_precision_candidates: candidates per image in `val/r_precision` (capped at the
            number of validation images, with a warning).
        seed: seeds the distractor draw of `val/r_precision`, so epochs compare.
    """

    family = "t2i-clip"

    def __init__(
        self,
        embed_dim: int = 128,
        image_resolution: int = 64,
        vision_width: int = 16,
        vision_layers: int | tuple[int, int, int, int] = (1, 1, 1, 1),
        vision_patch_size: int | None = None,
        context_length: int = 32,
        text_width: int = 128,
        text_layers: int = 3,
        lr: float = 5e-4,
        weight_decay: float = 0.1,
        warmup_steps: int = 100,
        export_path: str | None = None,
        r_precision_candidates: int = 100,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.clip = build_clip(
            embed_dim=embed_dim,
            image_resolution=image_resolution,
            vision_width=vision_width,
            vision_layers=vision_layers,
            vision_patch_size=vision_patch_size,
            context_length=context_length,
            text_width=text_width,
            text_layers=text_layers,
        )
        self._features: dict[str, list[Tensor]] = {"image": [], "text": []}

    def embed(self, images: Tensor, captions: list[str]) -> tuple[Tensor, Tensor]:
        """Unit-normalised image (B, D) and caption (B, D) embeddings of images (B, 3, H, W) in [0, 1]."""
        tokens = tokenize(captions, self.hparams.context_length).to(images.device)
        image = F.normalize(encode_images(self.clip, images), dim=-1)
        text = F.normalize(text_features(self.clip, tokens).sentence, dim=-1)
        return image, text

    def contrastive_loss(self, image: Tensor, text: Tensor, gather: bool = False) -> tuple[Tensor, Tensor]:
        """Symmetric InfoNCE of image (B, D) and text (B, D) embeddings and the top-1 image->text accuracy.

        With `gather` under DDP the candidates are the global batch (see `t2i.models.contrastive`).
        """
        return symmetric_infonce(image, text, self.clip.logit_scale, gather)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss, acc = self.contrastive_loss(*self.embed(batch["image"], batch["caption"]), gather=True)
        self.log_dict(
            {"train/loss": loss, "train/acc": acc, "train/logit_scale": self.clip.logit_scale.exp()},
            prog_bar=True,
            batch_size=len(batch["caption"]),
        )
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        with torch.no_grad():
            self.clip.logit_scale.clamp_(0, MAX_LOGIT_SCALE)

    # ------------------------------------------------------------------ evaluation
    def _eval_step(self, batch: dict[str, Any], prefix: str) -> None:
        image, text = self.embed(batch["image"], batch["caption"])
        loss, _ = self.contrastive_loss(image, text)
        self.log(f"{prefix}/loss", loss, batch_size=len(image))
        self._features["image"].append(image.detach().cpu())
        self._features["text"].append(text.detach().cpu())

    def _eval_epoch_end(self, prefix: str) -> None:
        image, text = torch.cat(self._features["image"]), torch.cat(self._features["text"])
        self._features = {"image": [], "text": []}
        candidates = min(self.hparams.r_precision_candidates, len(image))
        if candidates < 2:
            return
        if candidates < self.hparams.r_precision_candidates and not self.trainer.sanity_checking:
            warnings.warn(
                f"clip: only {len(image)} {prefix} images; {prefix}/r_precision uses {candidates} candidates "
                f"instead of {self.hparams.r_precision_candidates}",
                stacklevel=2,
            )
        rng = torch.Generator().manual_seed(self.hparams.seed)
        score = r_precision(image, text, num_candidates=candidates, rng=rng)
        self.log(f"{prefix}/r_precision", score, prog_bar=True, sync_dist=True)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    # ------------------------------------------------------------------ optimisation and export
    def configure_optimizers(self) -> dict[str, Any]:
        decay, no_decay = [], []
        for name, param in self.clip.named_parameters():
            # CLIP's recipe: weight decay only on matrices of linear / conv layers.
            is_matrix = param.ndim >= 2 and "embedding" not in name and name != "text_projection"
            (decay if is_matrix else no_decay).append(param)
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": self.hparams.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=self.hparams.lr,
            betas=(0.9, 0.98),
            eps=1e-6,
            fused=True,  # one kernel for all tensors; the loop version dominates small-model steps on CPU
        )
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = min(self.hparams.warmup_steps, total)

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(total - warmup, 1))))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        stamp_header(checkpoint, self.family)

    def on_fit_end(self) -> None:
        if self.trainer.is_global_zero:
            path = self.hparams.export_path or str(Path(self.trainer.default_root_dir) / "clip.pt")
            save_clip(self.clip, path)


def export_clip(ckpt_path: str | Path, out: str | Path) -> Path:
    """Write the CLIP state dict of a `clip`-stage training checkpoint to `out` (for `clip.load`)."""
    checkpoint = load_checkpoint(ckpt_path, family=ContrastiveCLIP.family)
    return save_clip(restore(ContrastiveCLIP, checkpoint, ckpt_path).clip, out)
