"""BoxGenerator: end token, sampled boxes valid and sorted, padding ignored, text pathways, Box type."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from t2i.models.layout import Box, BoxGenerator, boxes_from_tensors, sort_largest_first
from t2i.models.layout.box_generator import END, to_centre_size
from t2i.models.text import TextEncoder, TextFeatures, TextTowerShape, build_text_encoder

CAPTIONS = ["a red circle to the left of a blue square", "a green triangle", "a small diamond above a circle"]


@pytest.fixture(scope="module")
def text() -> TextEncoder:
    torch.manual_seed(0)
    return build_text_encoder(
        None, TextTowerShape(embed_dim=32, context_length=16, width=64, layers=1), False
    )


def _generator(text: TextEncoder, **kwargs) -> BoxGenerator:
    torch.manual_seed(1)
    args = {"hidden": 32, "layers": 1, "heads": 2, "max_objects": 4, "dropout": 0.0} | kwargs
    return BoxGenerator(5, text.embed_dim, text.width, **args).eval()


def _layout(rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    labels = torch.tensor([[2, 1, 0, 0], [3, 0, 0, 0], [4, 1, 2, 0]])
    boxes = torch.rand(3, 4, 4, generator=rng) * 0.4
    return labels, boxes * (labels > 0)[..., None], labels > 0


def test_end_token_stops_generation(text: TextEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    net = _generator(text)
    script = iter([[1, END, 3], [2, 1, 4], [END, 1, END]])  # the classes of the 3 rows, per step
    monkeypatch.setattr(net, "_sample_class", lambda logits, t, g: torch.tensor(next(script)))
    decoded = []
    original = net.decode
    monkeypatch.setattr(net, "decode", lambda *a: decoded.append(a[-1]) or original(*a))
    out = net.sample(text.encode(CAPTIONS), temperature=0.4, rng=torch.Generator().manual_seed(0))
    # Rows 0 and 2 end at step 2; row 1 ends at once, so its later class 1 is ignored.
    assert out.object_mask.sum(1).tolist() == [2, 0, 2]
    assert sorted(out.labels[0][out.object_mask[0]].tolist()) == [1, 2]
    assert (out.labels[~out.object_mask] == END).all() and (out.boxes[~out.object_mask] == 0).all()
    assert decoded == [1, 2, 3, 4, 5, 6]  # all rows ended at step 3: no fourth step was decoded


def test_samples_are_valid_boxes_sorted_largest_first(text: TextEncoder) -> None:
    net = _generator(text)
    out = net.sample(text.encode(CAPTIONS * 4), temperature=1.0, rng=torch.Generator().manual_seed(0))
    assert out.labels.shape[1] <= 4 and out.object_mask.any()
    real = out.boxes[out.object_mask]
    assert (real >= 0).all() and (real[:, 2:] > 0).all()
    assert (real[:, 0] + real[:, 2] <= 1 + 1e-6).all() and (real[:, 1] + real[:, 3] <= 1 + 1e-6).all()
    area = torch.where(out.object_mask, out.boxes[..., 2] * out.boxes[..., 3], torch.tensor(-1.0))
    assert (area[:, :-1] >= area[:, 1:]).all()
    again = net.sample(text.encode(CAPTIONS * 4), temperature=1.0, rng=torch.Generator().manual_seed(0))
    assert torch.equal(again.boxes, out.boxes) and torch.equal(again.labels, out.labels)
    with pytest.raises(ValueError, match="max_objects=5"):
        net.sample(text.encode(CAPTIONS), max_objects=5)


def test_samples_record_the_step_that_drew_each_object(text: TextEncoder) -> None:
    net = _generator(text)
    features = text.encode(CAPTIONS * 4)
    out = net.sample(features, temperature=1.0, rng=torch.Generator().manual_seed(0))
    first = net.sample(features, temperature=1.0, rng=torch.Generator().manual_seed(0), max_objects=1)
    assert (out.emitted.sort(dim=1).values == torch.arange(out.labels.shape[1])).all()  # a permutation
    slot = out.emitted.argmin(dim=1)  # the slot of each row's first drawn object
    rows = torch.arange(len(slot))
    has = first.object_mask[:, 0]
    assert torch.equal(out.labels[rows, slot][has], first.labels[:, 0][has])
    torch.testing.assert_close(out.boxes[rows, slot][has], first.boxes[:, 0][has])


def test_sort_largest_first_keeps_padding_last() -> None:
    labels = torch.tensor([[1, 2, 3, 0]])
    boxes = torch.tensor([[[0, 0, 0.1, 0.1], [0, 0, 0.5, 0.5], [0, 0, 0.3, 0.3], [0, 0, 0, 0]]])
    out = sort_largest_first(labels, boxes, labels > 0)
    assert out.labels.tolist() == [[2, 3, 1, 0]] and out.object_mask.tolist() == [[True, True, True, False]]


def test_loss_ignores_padded_slots_and_is_causal(text: TextEncoder, rng: torch.Generator) -> None:
    net = _generator(text)
    features = text.encode(CAPTIONS)
    labels, boxes, object_mask = _layout(rng)
    base = net.loss(features, labels, boxes, object_mask)
    junk = boxes.clone()
    junk[~object_mask] = 0.7  # padding content must not matter
    same = net.loss(features, labels, junk, object_mask)
    torch.testing.assert_close(same.total(), base.total())
    # Causal: in the sequence start, l0, b0, l1, b1, l2, b2, ... the box b2 (position 6) is read
    # only by later positions.
    moved = boxes.clone()
    moved[2, 2] = torch.tensor([0.5, 0.5, 0.2, 0.2])
    memory = net.memory(features)
    before = net.decode(features, memory, labels, boxes, 8)
    after = net.decode(features, memory, labels, moved, 8)
    torch.testing.assert_close(after[:, :6], before[:, :6])
    assert not torch.allclose(after[2, 6:], before[2, 6:])
    assert torch.isfinite(base.total()) and base.class_nll > 0
    with pytest.raises(ValueError, match="object slots > max_objects"):
        net.loss(
            features,
            torch.zeros(3, 6, dtype=torch.long),
            torch.zeros(3, 6, 4),
            torch.zeros(3, 6, dtype=torch.bool),
        )


def selected_losses(
    net: BoxGenerator,
    features: TextFeatures,
    labels: torch.Tensor,
    boxes: torch.Tensor,
    object_mask: torch.Tensor,
) -> torch.Tensor:
    """The box NLLs (3,) taken on the real objects by boolean selection: what the masked loss must equal."""
    n = labels.shape[1]
    states = net.decode(features, net.memory(features), labels, boxes, 2 * n)
    class_states, box_states = states[:, 0::2], states[:, 1::2]
    class_valid = torch.arange(n)[None] <= object_mask.sum(1)[:, None]
    targets = labels.masked_fill(~object_mask, END)
    class_nll = F.cross_entropy(net.class_head(class_states)[class_valid], targets[class_valid])
    centres, sizes = to_centre_size(boxes)
    real_states, real_centres = box_states[object_mask], centres[object_mask]
    centre_nll = net.centre_mixture(real_states).nll(real_centres).mean()
    size_nll = net.size_mixture(real_states, real_centres).nll(sizes[object_mask]).mean()
    return torch.stack([class_nll, centre_nll, size_nll])


@pytest.mark.parametrize("seed", range(3))
def test_masked_loss_equals_the_selected_objects_and_their_gradients(text: TextEncoder, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    net = _generator(text)
    features = text.encode(CAPTIONS * 2)
    counts = torch.randint(0, 5, (6,), generator=gen)
    counts[0] = 4  # a full row, which ends by length
    object_mask = torch.arange(4)[None] < counts[:, None]
    labels = torch.randint(1, 5, (6, 4), generator=gen) * object_mask
    boxes = torch.rand(6, 4, 4, generator=gen) * 0.5 * object_mask[..., None]
    params = [p for p in net.parameters() if p.requires_grad]
    loss = net.loss(features, labels, boxes, object_mask)
    masked = torch.stack([loss.class_nll, loss.centre_nll, loss.size_nll])
    selected = selected_losses(net, features, labels, boxes, object_mask)
    torch.testing.assert_close(masked, selected)
    weights = torch.tensor([1.0, 0.7, 0.3])
    got = torch.autograd.grad((masked * weights).sum(), params, allow_unused=True)
    want = torch.autograd.grad((selected * weights).sum(), params, allow_unused=True)
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if g is not None:
            assert torch.isfinite(g).all()
            torch.testing.assert_close(g, w)


def test_sentence_only_mode_never_reads_token_features(text: TextEncoder, rng: torch.Generator) -> None:
    features = text.encode(CAPTIONS)
    scrambled = TextFeatures(features.sentence, torch.randn_like(features.tokens), features.padding_mask)
    labels, boxes, object_mask = _layout(rng)
    sentence_only = _generator(text, use_tokens=False)
    a = sentence_only.loss(features, labels, boxes, object_mask).total()
    torch.testing.assert_close(sentence_only.loss(scrambled, labels, boxes, object_mask).total(), a)
    with_tokens = _generator(text, use_tokens=True)
    b = with_tokens.loss(features, labels, boxes, object_mask).total()
    assert not torch.allclose(with_tokens.loss(scrambled, labels, boxes, object_mask).total(), b)


def test_trainable_text_gets_gradients_from_the_box_likelihood(rng: torch.Generator) -> None:
    torch.manual_seed(0)
    tower = build_text_encoder(None, TextTowerShape(32, 16, 64, 1), trainable=True)
    net = _generator(tower).train()
    labels, boxes, object_mask = _layout(rng)
    net.loss(tower.encode(CAPTIONS), labels, boxes, object_mask).total().backward()
    assert tower.transformer.resblocks[0].attn.in_proj_weight.grad.abs().sum() > 0


def test_box_type_validates_and_converts(rng: torch.Generator) -> None:
    labels, boxes, object_mask = _layout(rng)
    names = ["<pad>", "circle", "square", "triangle", "diamond"]
    masks = torch.rand(3, 4, 8, 8, generator=rng)
    layout = boxes_from_tensors(labels[2], boxes[2], object_mask[2], names, masks[2])
    assert [b.label for b in layout] == ["diamond", "circle", "square"]
    assert layout[0].mask.shape == (8, 8) and layout[0].x == pytest.approx(float(boxes[2, 0, 0]))
    labeled = layout[1].labeled()
    assert (labeled.label, labeled.w) == ("circle", layout[1].w)
    with pytest.raises(ValueError, match="w=1.2"):
        Box("circle", 0.0, 0.0, 1.2, 0.5)
    with pytest.raises(ValueError, match="x \\+ w = 1.1"):
        Box("circle", 0.6, 0.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="mask shape"):
        Box("circle", 0.1, 0.1, 0.2, 0.2, mask=torch.zeros(3, 4))
