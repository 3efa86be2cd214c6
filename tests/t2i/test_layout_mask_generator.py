"""Shape generator parts: masks pasted inside their boxes, crop/paste round trip, context, discriminators."""

from __future__ import annotations

import torch

from t2i.models.layout.discriminators import MaskDiscriminators, layout_channels
from t2i.models.layout.mask_generator import ShapeGenerator, box_indicator, crop_masks, mask_bce, paste_masks


def _random_boxes(rng: torch.Generator, batch: int, n: int) -> torch.Tensor:
    size = 0.1 + 0.5 * torch.rand(batch, n, 2, generator=rng)
    corner = torch.rand(batch, n, 2, generator=rng) * (1 - size)
    return torch.cat([corner, size], -1)


def test_pasted_masks_lie_inside_their_boxes(rng: torch.Generator) -> None:
    boxes = _random_boxes(rng, 3, 4)
    masks = torch.rand(3, 4, 8, 8, generator=rng) * 0.5 + 0.5  # nowhere zero in the box frame
    pasted = paste_masks(masks, boxes, 32, 32)
    inside = box_indicator(boxes, 32, 32)
    assert pasted.shape == (3, 4, 32, 32)
    assert (pasted[inside == 0] == 0).all()
    # Pixels whose centres are well inside the box sample the mask (>= its minimum 0.5, bilinear).
    x0, y0 = ((boxes[..., 0] + 0.05) * 32).ceil().long(), ((boxes[..., 1] + 0.05) * 32).ceil().long()
    assert all(pasted[b, n, y0[b, n], x0[b, n]] >= 0.5 - 1e-5 for b in range(3) for n in range(4))


def test_box_indicator_counts_pixel_centres() -> None:
    box = torch.tensor([0.25, 0.0, 0.5, 0.25])  # x 2..6, y 0..2 on an 8 px grid
    expected = torch.zeros(8, 8)
    expected[0:2, 2:6] = 1
    torch.testing.assert_close(box_indicator(box, 8, 8), expected)


def test_crop_then_paste_recovers_a_shape(rng: torch.Generator) -> None:
    size = 64
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    disc = (((xx - 30) / 12) ** 2 + ((yy - 40) / 8) ** 2 <= 1).float()  # ellipse in box (18, 32, 24, 16)
    boxes = torch.tensor([[[18, 32, 24, 16]]]) / size
    local = crop_masks(disc[None, None], boxes, 16)
    assert local.shape == (1, 1, 16, 16)
    back = paste_masks(local, boxes, size, size)[0, 0] >= 0.5
    iou = (back & (disc > 0)).sum() / (back | (disc > 0)).sum()
    assert iou > 0.9
    assert local[0, 0, 8, 8] == 1 and local[0, 0, 0, 0] < 0.5  # centre in, corner out of the ellipse


def test_shape_generator_masks_are_probabilities_zero_at_padding_and_see_other_boxes(
    rng: torch.Generator,
) -> None:
    torch.manual_seed(0)
    net = ShapeGenerator(
        num_classes=5, sentence_dim=8, hidden=32, noise_dim=4, mask_size=8, channels=16
    ).eval()
    labels = torch.tensor([[1, 2, 0], [3, 0, 0]])
    boxes = _random_boxes(rng, 2, 3)
    object_mask = labels > 0
    sentence, noise = torch.randn(2, 8, generator=rng), torch.randn(2, 3, 4, generator=rng)
    masks = net(labels, boxes, object_mask, sentence, noise)
    assert masks.shape == (2, 3, 8, 8)
    assert ((masks > 0) & (masks < 1))[object_mask].all() and (masks[~object_mask] == 0).all()
    moved = boxes.clone()
    moved[0, 1] = torch.tensor([0.0, 0.0, 0.6, 0.6])
    other = net(labels, moved, object_mask, sentence, noise)
    assert not torch.allclose(other[0, 0], masks[0, 0])  # object 0 attends to object 1
    assert torch.allclose(other[1], masks[1])  # layouts do not see each other
    noisier = net(labels, boxes, object_mask, sentence, noise + 1)
    assert not torch.allclose(noisier[0, 0], masks[0, 0])
    empty = net(labels[:, :1] * 0, boxes[:, :1], object_mask[:, :1] & False, sentence, noise[:, :1])
    assert torch.isfinite(empty).all() and (empty == 0).all()


def test_layout_channels_and_discriminator_conditioning(rng: torch.Generator) -> None:
    masks = torch.zeros(1, 3, 4, 4)
    masks[0, 0, 0, 0], masks[0, 1, 0, 0], masks[0, 2, 3, 3] = 0.3, 0.8, 1.0
    channels = layout_channels(masks, torch.tensor([[2, 2, 0]]), num_classes=4)
    assert channels.shape == (1, 3, 4, 4)
    assert channels[0, 1, 0, 0] == 0.8 and channels[0, 1].sum() == 0.8  # class 2 merged by max
    assert channels[0, 0].sum() == 0 and channels[0, 2].sum() == 0  # padding dropped
    torch.manual_seed(0)
    d = MaskDiscriminators(num_classes=4, mask_size=8, layout_size=16, channels=8)
    local = torch.rand(2, 8, 8, generator=rng)
    same = d.instance(local[[0, 0]], torch.tensor([1, 2]))
    assert same.shape == (2,) and same[0] != same[1]  # class projection changes the logit
    assert d.layout(torch.rand(2, 3, 16, 16, generator=rng)).shape == (2,)


def test_mask_bce_matches_torch_and_survives_saturated_masks(rng: torch.Generator) -> None:
    pred, target = torch.rand(3, 8, 8, generator=rng), (torch.rand(3, 8, 8, generator=rng) > 0.5).float()
    torch.testing.assert_close(mask_bce(pred, target), torch.nn.functional.binary_cross_entropy(pred, target))
    saturated = mask_bce(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0]))
    assert torch.isfinite(saturated) and saturated > 10


def test_shape_generator_decodes_every_slot_as_the_selected_objects(rng: torch.Generator) -> None:
    torch.manual_seed(0)
    net = ShapeGenerator(num_classes=5, sentence_dim=8, hidden=32, noise_dim=4, mask_size=8, channels=16)
    object_mask = torch.tensor([[True, True, False, False], [True, False, False, False], [False] * 4])
    labels = torch.randint(1, 5, (3, 4), generator=rng) * object_mask
    boxes, sentence = _random_boxes(rng, 3, 4), torch.randn(3, 8, generator=rng)
    noise = torch.randn(3, 4, 4, generator=rng)
    contexts: list[torch.Tensor] = []
    net.context.register_forward_hook(lambda module, args, out: contexts.append(out))
    masks = net(labels, boxes, object_mask, sentence, noise)
    # The selection-based decoding: only the real objects' context vectors go through the mask head.
    real = contexts[0][object_mask]
    selected = torch.sigmoid(net.up(net.to_grid(real).view(-1, net.channels, 4, 4))[:, 0])
    torch.testing.assert_close(masks[object_mask], selected)
    assert (masks[~object_mask] == 0).all()
    weights = torch.rand_like(selected)
    params = list(net.parameters())
    got = torch.autograd.grad((masks[object_mask] * weights).sum(), params, retain_graph=True)
    want = torch.autograd.grad((selected * weights).sum(), params)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_masked_mask_bce_equals_the_selected_masks(rng: torch.Generator) -> None:
    pred = torch.rand(3, 4, 8, 8, generator=rng).requires_grad_(True)
    target = (torch.rand(3, 4, 8, 8, generator=rng) > 0.5).float()
    mask = torch.tensor([[True, False, True, False], [False] * 4, [True] * 4])
    masked, selected = mask_bce(pred, target, mask), mask_bce(pred[mask], target[mask])
    torch.testing.assert_close(masked, selected)
    (got,) = torch.autograd.grad(masked, pred)
    torch.testing.assert_close(got, torch.autograd.grad(selected, pred)[0])
    assert mask_bce(pred, target, mask & False) == 0
