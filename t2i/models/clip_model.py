"""CLIP models through clip-anytorch (Radford et al. 2021): local loading, small models, tokens, images.

ganforge never downloads weights. `load_clip` takes a local file: an OpenAI CLIP archive (e.g.
ViT-B-32.pt) or a plain state dict such as the one the `clip` stage writes; a model name such as
"ViT-B/32" works only when its file is already in ~/.cache/clip/.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.checkpoint import atomic_torch_save
from ganforge.errors import UserError

with warnings.catch_warnings():
    # clip imports pkg_resources, which warns about its own deprecation on import.
    warnings.simplefilter("ignore")
    import clip
    from clip.model import CLIP
    from clip.simple_tokenizer import SimpleTokenizer

CLIP_CACHE_DIR = Path("~/.cache/clip").expanduser()
# The image normalisation CLIP was trained with (clip.clip._transform); the small CLIP uses it too.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HEAD_WIDTH = 64  # clip.model.build_model infers heads = width // 64, so widths are multiples of 64


@lru_cache(maxsize=1)
def bpe_tokenizer() -> SimpleTokenizer:
    """CLIP's byte-level BPE tokenizer; its vocabulary ships inside the clip package."""
    return SimpleTokenizer()


def vocab_size() -> int:
    """Size of CLIP's BPE vocabulary (49408), the `vocab_size` of every CLIP text tower."""
    return len(bpe_tokenizer().encoder)


def tokenize(captions: list[str], context_length: int) -> Tensor:
    """Token ids (B, L=context_length) as `clip.tokenize`, truncating long captions with a warning.

    A caption longer than `context_length` tokens keeps its first tokens and ends with EOT, as
    `clip.tokenize(..., truncate=True)` does.
    """
    if isinstance(captions, str) or not all(isinstance(c, str) for c in captions):
        raise TypeError(f"tokenize: captions must be a list of str, got {type(captions).__name__}")
    tok = bpe_tokenizer()
    sot, eot = tok.encoder["<|startoftext|>"], tok.encoder["<|endoftext|>"]
    out = torch.zeros(len(captions), context_length, dtype=torch.long)
    for i, caption in enumerate(captions):
        ids = [sot, *tok.encode(caption), eot]
        if len(ids) > context_length:
            warnings.warn(
                f"t2i CLIP: caption {caption[:40]!r}... has {len(ids)} tokens; truncated to the "
                f"context length {context_length}",
                stacklevel=2,
            )
            ids = ids[: context_length - 1] + [eot]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def _resolve(name_or_path: str | os.PathLike) -> Path:
    """The local file behind a path or a cached model name; never downloads."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"t2i CLIP: CLIP weights '{path}' is a directory; pass the .pt file")
    if path.is_file():
        return path
    name = str(name_or_path)
    urls = getattr(clip.clip, "_MODELS", {})  # the official weight URLs, keyed by model name
    if name in urls:
        cached = CLIP_CACHE_DIR / os.path.basename(urls[name])
        if cached.is_file():
            return cached
        raise FileNotFoundError(
            f"t2i CLIP: CLIP model '{name}' is not on this machine and ganforge never downloads weights; "
            f"download {urls[name]} yourself and put it at {cached} (or pass the file's path)"
        )
    raise FileNotFoundError(
        f"t2i CLIP: CLIP weights '{name}' do not exist; expected a local .pt file (an OpenAI CLIP "
        f"archive or the state dict written by the clip stage) or a model name cached in {CLIP_CACHE_DIR}"
    )


def load_clip(name_or_path: str | os.PathLike) -> CLIP:
    """A CLIP model in fp32 on CPU, eval mode, from a local file via `clip.load(path, jit=False)`.

    clip.load rebuilds the model from the state dict in fp16 (so fp32 weights are rounded to fp16
    once) and `.float()` turns it back to fp32 for CPU use.
    """
    path = _resolve(name_or_path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=FutureWarning)
            model, _ = clip.load(str(path), device="cpu", jit=False)
    except Exception as err:  # noqa: BLE001 - torch.jit.load / torch.load / build_model raise many types
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise UserError(
            f"t2i CLIP: '{path}' is not a loadable CLIP checkpoint ({type(err).__name__}: {first})"
        ) from None
    return model.float().eval()


def build_clip(
    *,
    embed_dim: int,
    image_resolution: int,
    vision_width: int,
    vision_layers: int | list[int],
    vision_patch_size: int | None,
    context_length: int,
    text_width: int,
    text_layers: int,
) -> CLIP:
    """A randomly initialised `clip.model.CLIP` whose state dict `clip.load` rebuilds.

    `vision_layers` as an int gives a ViT image tower (patches of `vision_patch_size`, width a
    multiple of 64); as 4 ints it gives CLIP's ModifiedResNet (blocks per stage, overall stride 32,
    any even width), which learns much faster than a ViT from scratch on small data.
    """
    resnet = isinstance(vision_layers, (list, tuple))
    if text_width < HEAD_WIDTH or text_width % HEAD_WIDTH:
        raise UserError(
            f"clip: text_width={text_width}; expected a multiple of {HEAD_WIDTH} (one head per 64)"
        )
    if resnet:
        if len(vision_layers) != 4 or min(vision_layers) < 1 or vision_width < 2 or vision_width % 2:
            raise UserError(
                f"clip: ResNet vision_layers={list(vision_layers)}, vision_width={vision_width}; expected 4 "
                "positive block counts and an even width"
            )
        if image_resolution % 32:
            raise UserError(
                f"clip: image_resolution={image_resolution}; a ResNet tower needs a multiple of 32"
            )
        vision_layers, vision_patch_size = tuple(vision_layers), None
    else:
        if vision_width < HEAD_WIDTH or vision_width % HEAD_WIDTH:
            raise UserError(f"clip: vision_width={vision_width}; a ViT needs a multiple of {HEAD_WIDTH}")
        if not vision_patch_size or image_resolution % vision_patch_size:
            raise UserError(
                f"clip: image_resolution={image_resolution} must be a multiple of vision_patch_size="
                f"{vision_patch_size} for a ViT tower"
            )
    if min(embed_dim, text_layers) < 1 or context_length < 2:
        raise UserError(
            f"clip: embed_dim={embed_dim}, text_layers={text_layers} must be >= 1 and "
            f"context_length={context_length} >= 2"
        )
    return CLIP(
        embed_dim,
        image_resolution,
        vision_layers,
        vision_width,
        vision_patch_size,
        context_length,
        vocab_size(),
        text_width,
        text_width // HEAD_WIDTH,
        text_layers,
    )


def save_clip(model: CLIP, path: str | os.PathLike) -> Path:
    """Write `model`'s state dict (fp32, CPU) atomically so `clip.load(path, jit=False)` rebuilds it."""
    state = {
        k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype)
        for k, v in model.state_dict().items()
    }
    atomic_torch_save(state, path)
    return Path(path)


def encode_images(model: CLIP, images: Tensor) -> Tensor:
    """CLIP image embeddings (B, D) of images (B, 3, H, W) in [0, 1], unnormalised.

    Images are resized to the model's input resolution (bicubic, antialiased) and normalised with
    CLIP's mean and std, as clip's own preprocessing does for square images.
    """
    size = model.visual.input_resolution
    if images.shape[-2:] != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    mean = images.new_tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(CLIP_STD).view(1, 3, 1, 1)
    return model.encode_image((images - mean) / std)
