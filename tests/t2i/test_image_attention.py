"""Object-driven attention (Obj-GAN) and word attention (AttnGAN) of the image generator."""

from __future__ import annotations

import torch
from torch.testing import assert_close

from t2i.models.image.attention import ObjectTextAttention, PhraseContext, WordRegionAttention, attend, paint
from t2i.models.image.generator import ImageGenerator
from t2i.models.image.layers import Layout, LayoutNorm
from t2i.models.text import TextFeatures


def _one_hot_attention(dim: int) -> ObjectTextAttention:
    """Attention whose keys and values are the token vectors and whose queries are scaled class vectors."""
    attn = ObjectTextAttention(dim, dim, dim, attn_dim=dim)
    with torch.no_grad():
        for layer, scale in ((attn.query, 50.0), (attn.key, 1.0), (attn.value, 1.0)):
            layer.weight.copy_(scale * torch.eye(dim))
            layer.bias.zero_()
    return attn


def test_object_attends_to_matching_token_and_never_to_padding() -> None:
    dim = 8
    tokens = torch.eye(dim)[None, :6]  # six one-hot tokens (1, 6, 8)
    padding = torch.tensor([[False, False, False, False, True, True]])
    queries = torch.eye(dim)[None, [2, 4]]  # object 0 matches token 2; object 1 matches padding token 4
    context = _one_hot_attention(dim)(queries, tokens, padding)
    assert_close(context[0, 0], tokens[0, 2], atol=1e-4, rtol=0)
    # Object 1's best match is padding: its weight goes to the real tokens only, equally.
    assert_close(context[0, 1], tokens[0, :4].mean(0), atol=1e-4, rtol=0)


def test_paint_puts_each_objects_context_only_inside_its_mask() -> None:
    gen = torch.Generator().manual_seed(0)
    side = 8
    masks = torch.zeros(1, 3, side, side)
    masks[0, 0, 1:3, 1:4] = 1.0  # object 0
    masks[0, 1, 5:8, 4:7] = 1.0  # object 1
    masks[0, 2, 0:2, 6:8] = 1.0  # padding object: must paint nothing
    tokens = torch.randn(1, 5, 16, generator=gen)
    classes = torch.randn(1, 3, 12, generator=gen)
    context = ObjectTextAttention(12, 16, 4)(classes, tokens, torch.zeros(1, 5, dtype=torch.bool))
    painted = paint(context, masks, object_mask=torch.tensor([[True, True, False]]))  # (1, 4, 8, 8)
    for n in (0, 1):
        inside = masks[0, n].bool()
        assert_close(painted[0][:, inside], context[0, n][:, None].expand(-1, int(inside.sum())))
    outside = ~(masks[0, 0] + masks[0, 1]).bool()
    assert painted[0][:, outside].abs().max() == 0


def test_layout_norm_modulates_only_inside_masks() -> None:
    gen = torch.Generator().manual_seed(1)
    norm = LayoutNorm(channels=8, object_dim=6)
    torch.nn.init.normal_(norm.affine.weight, generator=gen)
    masks = torch.zeros(2, 1, 8, 8)
    masks[:, 0, 2:5, 2:6] = 1.0
    x = torch.randn(2, 8, 8, 8, generator=gen)
    layout = Layout(torch.randn(2, 1, 6, generator=gen), {8: masks})
    out, plain = norm(x, layout), norm.norm(x)
    inside = masks[0, 0].bool()
    assert_close(out[..., ~inside], plain[..., ~inside])
    assert (out[..., inside] - plain[..., inside]).abs().mean() > 0.1


def test_a_caption_word_the_objects_attend_to_changes_the_image_at_the_objects() -> None:
    """End to end through the generator: object contexts reach the image where the masks are."""
    torch.manual_seed(0)
    net = ImageGenerator(
        num_classes=3, token_dim=16, sentence_dim=8, image_size=16, widths=[16, 16, 8], latent_dim=8
    )
    for module in net.modules():
        if isinstance(module, LayoutNorm):
            torch.nn.init.normal_(module.affine.weight, std=0.5)
    masks = torch.zeros(1, 2, 16, 16)
    masks[0, 0, 1:6, 1:6] = 1.0
    masks[0, 1, 10:15, 10:15] = 1.0
    labels, present = torch.tensor([[1, 2]]), torch.tensor([[True, True]])
    tokens = torch.randn(1, 4, 16)
    other = tokens.clone()
    other[0, 1] = torch.randn(16) * 3  # a different word the class queries can attend to
    z = torch.randn(1, 8)
    padding = torch.zeros(1, 4, dtype=torch.bool)

    def run(tok: torch.Tensor) -> torch.Tensor:
        return net(z, TextFeatures(torch.zeros(1, 8), tok, padding), labels, masks, present)[-1]

    change = (run(tokens) - run(other)).abs().sum(1)[0]  # (16, 16)
    inside = (masks[0, 0] + masks[0, 1]).bool()
    # Convs spread a change by a few pixels; GroupNorm statistics move everything a little.
    far = torch.nn.functional.max_pool2d(inside[None].float(), 7, stride=1, padding=3)[0] == 0
    assert change[inside].mean() > 3 * change[far].mean()


def test_word_attention_starts_as_identity_and_ignores_padding() -> None:
    attn = WordRegionAttention(channels=4, token_dim=6)
    features = torch.randn(2, 4, 5, 5)
    tokens = torch.randn(2, 3, 6)
    padding = torch.tensor([[False, False, True], [False, True, True]])
    assert_close(attn(features, tokens, padding), features)
    torch.nn.init.normal_(attn.mix.weight)
    changed = tokens.clone()
    changed[padding] = 100.0  # padding tokens may hold anything
    assert_close(attn(features, tokens, padding), attn(features, changed, padding))


def test_phrase_context_starts_as_identity_and_ignores_padding() -> None:
    torch.manual_seed(0)
    phrases = PhraseContext(16)
    tokens = torch.randn(2, 7, 16)
    padding = torch.tensor([[False] * 5 + [True] * 2, [False] * 7])
    assert_close(phrases(tokens, padding), tokens)  # zero-initialised output layer
    torch.nn.init.normal_(phrases.out.weight)
    changed = tokens.clone()
    changed[0, 5:] = 100.0  # padding content must not reach the real tokens in either direction
    assert_close(phrases(changed, padding)[0, :5], phrases(tokens, padding)[0, :5])


def test_images_are_the_same_with_caption_features_trimmed_to_the_used_tokens() -> None:
    """`TextFeatures.trim` drops padding columns only: the generator (word attention, object attention
    over the phrase GRU) paints the same image, in fp32 and under CPU bf16 autocast."""
    torch.manual_seed(0)
    net = ImageGenerator(
        num_classes=3,
        token_dim=16,
        sentence_dim=8,
        image_size=16,
        widths=[16, 16, 8],
        latent_dim=8,
        phrases=True,
    ).eval()
    for module in net.modules():  # the layers that start as the identity, switched on
        for weight in ("affine", "mix", "out"):
            if isinstance(getattr(module, weight, None), (torch.nn.Linear, torch.nn.Conv2d)):
                torch.nn.init.normal_(getattr(module, weight).weight, std=0.5)
    used, length = 5, 12
    padding = torch.arange(length)[None] >= torch.tensor([[4], [5]])  # captions of 4 and 5 tokens
    text = TextFeatures(
        torch.randn(2, 8), torch.randn(2, length, 16).masked_fill(padding[..., None], 0), padding
    )
    masks = torch.zeros(2, 2, 16, 16)
    masks[:, 0, 1:6, 1:6], masks[:, 1, 9:15, 8:14] = 1.0, 1.0
    args = (torch.tensor([[1, 2], [2, 0]]), masks, torch.tensor([[True, True], [True, False]]))
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert_close(net(z, text.trim(used), *args)[-1], net(z, text, *args)[-1])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            trimmed, full = net(z, text.trim(used), *args)[-1], net(z, text, *args)[-1]
    assert_close(trimmed.float(), full.float(), atol=1e-2, rtol=0)  # bf16 rounding: ~3 significant digits


def _binding_accuracy(phrases: bool, steps: int = 300) -> float:
    """Train object attention to name each object's colour in "c1 n1 c2 n2" captions; held-out accuracy.

    Token features are fixed random vectors per word, context-free like word embeddings: a noun's own
    feature says nothing about its colour, so the colour must come from the word before it.
    """
    gen = torch.Generator().manual_seed(0)
    colours, nouns, dim = 4, 4, 16
    vocab = torch.randn(colours + nouns, dim, generator=gen)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        noun = torch.stack([torch.randperm(nouns, generator=gen)[:2] for _ in range(n)])  # (n, 2) distinct
        colour = torch.randint(colours, (n, 2), generator=gen)
        words = torch.stack([colour[:, 0], colours + noun[:, 0], colour[:, 1], colours + noun[:, 1]], dim=1)
        return vocab[words], noun, colour

    torch.manual_seed(0)
    query = torch.nn.Embedding(nouns, 16)
    attn = ObjectTextAttention(16, dim, 32, attn_dim=16, phrases=phrases)
    head = torch.nn.Linear(32, colours)
    params = [*query.parameters(), *attn.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)
    no_padding = torch.zeros(64, 4, dtype=torch.bool)
    for _ in range(steps):
        tokens, noun, colour = batch(64)
        logits = head(attn(query(noun), tokens, no_padding))  # (64, 2, colours)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), colour.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        tokens, noun, colour = batch(64)
        return (head(attn(query(noun), tokens, no_padding)).argmax(-1) == colour).float().mean().item()


def test_phrase_context_lets_each_object_find_its_own_adjective() -> None:
    """Why `phrase_context` exists: with context-free token features, attention alone cannot tell which
    colour word precedes which noun (it sees a bag of words); the bidirectional GRU can."""
    with_phrases, without = _binding_accuracy(True), _binding_accuracy(False)
    assert with_phrases >= 0.95, with_phrases
    assert without <= 0.8, without  # a bag of two colours: 1/4 same colour + 3/4 x 1/2 = 0.625 (0.70 here)


def test_phrase_context_equals_the_gru_on_packed_sequences() -> None:
    """Both directions read each caption alone, as `nn.GRU` over `pack_padded_sequence` does."""
    torch.manual_seed(0)
    phrases = PhraseContext(16)
    torch.nn.init.normal_(phrases.out.weight)
    lengths = torch.tensor([7, 4, 1, 5])
    padding = torch.arange(7)[None] >= lengths[:, None]
    tokens = torch.randn(4, 7, 16).masked_fill(padding[..., None], 50.0)  # loud padding
    packed = torch.nn.utils.rnn.pack_padded_sequence(tokens, lengths, batch_first=True, enforce_sorted=False)
    read, _ = torch.nn.utils.rnn.pad_packed_sequence(phrases.gru(packed)[0], batch_first=True, total_length=7)
    assert_close(phrases(tokens, padding), tokens + phrases.out(read))


def test_word_attention_equals_mixing_the_concatenated_context() -> None:
    """AttnGAN's form, features + mix([features ; context]), with the mix folded into the values."""
    torch.manual_seed(0)
    attn = WordRegionAttention(channels=8, token_dim=12).double()
    torch.nn.init.normal_(attn.mix.weight)
    torch.nn.init.normal_(attn.mix.bias)
    features = torch.randn(2, 8, 5, 6, dtype=torch.float64)
    tokens = torch.randn(2, 4, 12, dtype=torch.float64)
    padding = torch.tensor([[False, False, True, True], [False, False, False, False]])
    queries = attn.query(features).flatten(2).transpose(1, 2)  # (B, H*W, A)
    context = attend(queries, attn.key(tokens), attn.value(tokens), padding)  # (B, H*W, C)
    context = context.transpose(1, 2).reshape(2, 8, 5, 6)
    assert_close(attn(features, tokens, padding), features + attn.mix(torch.cat([features, context], dim=1)))
