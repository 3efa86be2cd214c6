"""TextEncoder: a tiny random CLIP saved to disk and loaded through the real clip.load path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import t2i.models.clip_model as clip_model
from t2i.models.clip_model import build_clip, clip, load_clip, save_clip, tokenize  # clip imported quietly
from t2i.models.text import TextEncoder

CONTEXT = 24


@pytest.fixture(scope="module")
def tiny_clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = build_clip(
        embed_dim=32,
        image_resolution=32,
        vision_width=64,
        vision_layers=1,
        vision_patch_size=16,
        context_length=CONTEXT,
        text_width=64,
        text_layers=2,
    )
    return save_clip(model, tmp_path_factory.mktemp("clip") / "tiny_clip.pt")


@pytest.fixture(scope="module")
def encoder(tiny_clip_path: Path) -> TextEncoder:
    return TextEncoder.from_pretrained(tiny_clip_path)


def test_state_dict_loads_through_clip_load_in_fp32(tiny_clip_path: Path) -> None:
    model, _ = clip.load(str(tiny_clip_path), device="cpu", jit=False)  # the library's own loader
    saved = torch.load(tiny_clip_path, weights_only=True)
    for name, tensor in model.state_dict().items():
        # clip.load builds in fp16 then casts to fp32 on CPU: values equal up to fp16 rounding.
        torch.testing.assert_close(tensor.float(), saved[name], rtol=1e-3, atol=1e-4)
    loaded = load_clip(tiny_clip_path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters()) and not loaded.training


def test_features_shapes_and_sentence_equals_clip_encode_text(
    encoder: TextEncoder, tiny_clip_path: Path
) -> None:
    captions = ["a red circle to the left of a blue square", "a green triangle", "a"]
    features = encoder.encode(captions)
    assert (encoder.width, encoder.embed_dim, encoder.context_length) == (64, 32, CONTEXT)
    assert features.sentence.shape == (3, 32) and features.sentence.dtype == torch.float32
    assert features.tokens.shape == (3, CONTEXT, 64) and features.tokens.dtype == torch.float32
    assert features.padding_mask.shape == (3, CONTEXT) and features.padding_mask.dtype == torch.bool
    reference = load_clip(tiny_clip_path).encode_text(tokenize(captions, CONTEXT))
    torch.testing.assert_close(features.sentence, reference)


def test_padding_mask_marks_positions_after_eot(encoder: TextEncoder) -> None:
    captions = ["a green triangle", "a red circle to the left of a blue square"]
    tokens = tokenize(captions, CONTEXT)
    features = encoder.encode(captions)
    eot = tokens.argmax(dim=1)  # SOT + 3 words + EOT -> position 4
    assert eot[0] == 4
    expected = torch.arange(CONTEXT)[None] > eot[:, None]
    assert torch.equal(features.padding_mask, expected)
    assert (features.tokens[features.padding_mask] == 0).all()
    assert (features.tokens[~features.padding_mask].abs().sum(-1) > 0).all()
    # The EOT token's feature through the projection is the sentence embedding.
    torch.testing.assert_close(features.tokens[0, 4] @ encoder.text_projection, features.sentence[0])


def test_token_features_are_causal_transformer_outputs(encoder: TextEncoder) -> None:
    short = encoder.encode(["a red circle"])
    long = encoder.encode(["a red circle to the left of a blue square"])
    # SOT + "a red circle": the first 4 positions see the same prefix under causal attention.
    torch.testing.assert_close(short.tokens[0, :4], long.tokens[0, :4])
    assert not torch.allclose(short.tokens[0, 4], long.tokens[0, 4])  # EOT vs "to"


def test_long_caption_truncated_with_warning(encoder: TextEncoder) -> None:
    caption = "a red circle " * 20
    with pytest.warns(UserWarning, match=rf"truncated to the context length {CONTEXT}"):
        features = encoder.encode([caption])
        tokens = tokenize([caption], CONTEXT)
    assert not features.padding_mask.any()  # every position used, EOT last
    assert torch.equal(tokens[0, :4], tokenize([caption[:12]], CONTEXT)[0, :4])  # SOT a red circle
    assert tokens[0, -1] == tokens.max()  # EOT has the largest id
    assert torch.isfinite(features.sentence).all()


def test_empty_and_non_ascii_captions(encoder: TextEncoder) -> None:
    features = encoder.encode(["", "ünïcödé 日本語 ✓ caption"])
    assert features.padding_mask[0].tolist() == [False, False] + [True] * (CONTEXT - 2)  # SOT, EOT
    assert (~features.padding_mask[1]).sum() > 4
    assert torch.isfinite(features.sentence).all() and torch.isfinite(features.tokens).all()
    with pytest.raises(TypeError, match="list of str"):
        encoder.encode(["fine", None])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="list of str"):
        encoder.encode("a bare string")  # type: ignore[arg-type]


def test_frozen_by_default_and_trainable_on_request(tiny_clip_path: Path) -> None:
    frozen = TextEncoder.from_pretrained(tiny_clip_path)
    assert not any(p.requires_grad for p in frozen.parameters())
    assert not frozen.encode(["a red circle"]).sentence.requires_grad
    assert not any(k.startswith("visual") for k in frozen.state_dict())  # the image tower is not kept
    trainable = TextEncoder.from_pretrained(tiny_clip_path, trainable=True)
    trainable.encode(["a red circle"]).sentence.sum().backward()
    assert trainable.token_embedding.weight.grad is not None
    assert trainable.token_embedding.weight.grad.abs().sum() > 0


def test_missing_weights_give_a_clear_error_and_never_download(
    tmp_path: Path, tiny_clip_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(clip.clip, "_download", no_network)
    monkeypatch.setattr(clip_model, "CLIP_CACHE_DIR", tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        TextEncoder.from_pretrained(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match=r"never downloads.*cache/ViT-B-32\.pt"):
        TextEncoder.from_pretrained("ViT-B/32")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load_clip(tmp_path)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pt' is not a loadable CLIP checkpoint"):
        load_clip(garbage)
    # A model name whose file is already cached loads from disk.
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "ViT-B-32.pt").write_bytes(tiny_clip_path.read_bytes())
    assert TextEncoder.from_pretrained("ViT-B/32").embed_dim == 32


def test_widths_must_be_multiples_of_64() -> None:
    with pytest.raises(ValueError, match="text_width=96"):
        build_clip(
            embed_dim=8,
            image_resolution=32,
            vision_width=64,
            vision_layers=1,
            vision_patch_size=16,
            context_length=8,
            text_width=96,
            text_layers=1,
        )
