"""Image-stage discriminators: ROI crops at the boxes, mismatched-caption negatives, object conditioning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from ganforge.losses import hinge_d, loss_pair, masked_g_loss
from t2i.image_stage import conditional_d_loss, mismatched_captions
from t2i.models.image.crops import crop_objects
from t2i.models.image.discriminators import ObjectDiscriminator, PatchDiscriminator
from t2i.models.layout.mask_generator import box_indicator
from t2i.models.text import TextFeatures


def test_roi_crops_are_exactly_the_box_pixels() -> None:
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 32, 32, generator=gen)
    # (x, y, w, h) in pixels; squares so one output side fits each box.
    pixel_boxes = [[(3, 5, 8, 8), (20, 1, 8, 8)], [(0, 24, 8, 8), (10, 10, 8, 8)]]
    boxes = torch.tensor(pixel_boxes, dtype=torch.float32) / 32
    present = torch.tensor([[True, True], [False, True]])
    crops = crop_objects(image, boxes, present, output_size=8, sampling_ratio=1)
    expected = [image[0, :, 5:13, 3:11], image[0, :, 1:9, 20:28], image[1, :, 10:18, 10:18]]
    assert crops.shape == (3, 3, 8, 8)
    for crop, want in zip(crops, expected):
        assert_close(crop, want)


def test_roi_crops_line_up_with_boxes_on_downsampled_features() -> None:
    """A bright square drawn in an image is found by its normalised box on a half-resolution map."""
    image = torch.zeros(1, 1, 32, 32)
    image[0, 0, 8:20, 12:24] = 1.0  # x 12..24, y 8..20
    box = torch.tensor([[[12 / 32, 8 / 32, 12 / 32, 12 / 32]]])
    features = torch.nn.functional.avg_pool2d(image, 2)  # (1, 1, 16, 16)
    present = torch.tensor([[True]])
    assert_close(crop_objects(features, box, present, 6, sampling_ratio=1), torch.ones(1, 1, 6, 6))
    shifted = box + torch.tensor([6 / 32, 0, 0, 0])
    assert crop_objects(features, shifted, present, 6, sampling_ratio=1).mean() < 0.6
    # The generator's filled-box masks cover exactly the pixels of the crop.
    assert_close(box_indicator(box, 32, 32)[0, 0], image[0, 0])


def test_conditional_loss_scores_mismatched_caption_as_negative() -> None:
    real, fake = torch.full((4,), 2.0), torch.full((4,), -2.0)
    # D scores the mismatched pairs like real ones: only the mismatched half of the negatives costs.
    mistaken = conditional_d_loss(hinge_d, real, fake, torch.full((4,), 2.0))
    assert_close(mistaken, torch.tensor(0.5 * (1 + 2.0)))
    assert_close(conditional_d_loss(hinge_d, real, fake, torch.full((4,), -2.0)), torch.tensor(0.0))
    wrong = torch.full((4,), 0.5, requires_grad=True)
    conditional_d_loss(hinge_d, real, fake, wrong).backward()
    assert (wrong.grad > 0).all()  # descent pushes the mismatched logits down


def test_mismatched_captions_skip_identical_texts() -> None:
    other, valid = mismatched_captions(["a red circle", "a blue square", "a blue square", "a green diamond"])
    assert other.tolist() == [1, 2, 3, 0]
    assert valid.tolist() == [True, False, True, True]
    assert mismatched_captions(["only one"])[1].tolist() == [False]


def test_conditional_patch_d_learns_to_reject_mismatched_captions() -> None:
    """Trained on the conditional loss alone, D scores (image, its caption) above (image, other caption)."""
    torch.manual_seed(0)
    colours = torch.eye(3)  # red, green, blue images
    sentences = torch.randn(3, 8)  # one "caption embedding" per colour
    critic = PatchDiscriminator([8, 16], sentence_dim=8)
    opt = torch.optim.Adam(critic.parameters(), lr=2e-3, betas=(0.0, 0.99))
    for _ in range(60):
        idx = torch.randint(3, (12,))
        images = colours[idx][:, :, None, None].expand(-1, -1, 8, 8) + 0.05 * torch.randn(12, 3, 8, 8)
        fakes = torch.rand(12, 3, 8, 8)
        _, f_real = critic.features(images)
        _, f_fake = critic.features(fakes)
        wrong = sentences[(idx + 1) % 3]
        loss = conditional_d_loss(
            hinge_d,
            critic.logits(f_real, sentences[idx]),
            critic.logits(f_fake, sentences[idx]),
            critic.logits(f_real, wrong),
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        _, f = critic.features(colours[:, :, None, None].expand(-1, -1, 8, 8))
        matched = critic.logits(f, sentences).mean(1)
        mismatched = critic.logits(f, sentences[[1, 2, 0]]).mean(1)
    assert (matched > mismatched + 0.5).all()


def test_object_logits_depend_on_class_and_caption() -> None:
    torch.manual_seed(0)
    critic = ObjectDiscriminator(stem_width=8, widths=[8, 16, 16], num_classes=3, token_dim=16, roi_size=4)
    stem = torch.randn(2, 8, 16, 16)
    boxes = torch.tensor([[[0.1, 0.1, 0.4, 0.4]], [[0.5, 0.5, 0.4, 0.4]]])
    text = TextFeatures(torch.zeros(2, 8), torch.randn(2, 5, 16), torch.zeros(2, 5, dtype=torch.bool))
    features = critic.features(stem, boxes)
    assert features.shape == (2, 1, 16)
    base = critic.logits(features, critic.conditioning(torch.tensor([[1], [1]]), text))
    assert base.shape == (2, 1)
    other_class = critic.logits(features, critic.conditioning(torch.tensor([[2], [2]]), text))
    other_text = TextFeatures(text.sentence, torch.randn(2, 5, 16), text.padding_mask)
    assert (base - other_class).abs().min() > 1e-4
    other_caption = critic.logits(features, critic.conditioning(torch.tensor([[1], [1]]), other_text))
    assert (base - other_caption).abs().min() > 1e-4


def test_object_slots_score_the_real_objects_as_the_selected_crops_do() -> None:
    torch.manual_seed(0)
    critic = ObjectDiscriminator(stem_width=8, widths=[8, 16, 16], num_classes=3, token_dim=16, roi_size=4)
    critic.eval()  # spectral norm's power iteration would change the weights between the two passes
    stem = torch.randn(3, 8, 16, 16)
    boxes = torch.rand(3, 4, 4) * 0.5
    present = torch.tensor([[True, True, False, False], [True, False, False, False], [False] * 4])
    boxes[~present] = 0.0  # padding slots, as collate_layouts leaves them
    slots = critic.features(stem, boxes)  # (3, 4, C): every slot
    selected = F.relu(critic.head(crop_objects(critic.trunk(stem), boxes, present, 4))).sum(dim=(2, 3))
    assert_close(slots[present], selected)
    assert torch.isfinite(slots).all()  # padding slots: zero-size boxes, finite features


@pytest.mark.parametrize("loss", ["hinge", "ns", "wgan"])
def test_masked_losses_equal_the_losses_of_the_selected_logits(loss: str) -> None:
    d_loss, g_loss = loss_pair(loss)
    gen = torch.Generator().manual_seed(0)
    real, fake, wrong = (torch.randn(3, 4, generator=gen) * 3 for _ in range(3))
    present = torch.tensor(
        [[True, True, False, False], [True, False, False, False], [True, True, True, False]]
    )
    valid = torch.tensor([True, False, True])[:, None]
    wrong_present = present & valid
    expected = d_loss(real[present], torch.cat([fake[present], wrong[wrong_present]]))
    assert_close(conditional_d_loss(d_loss, real, fake, wrong, present, wrong_present), expected)
    assert_close(masked_g_loss(g_loss, fake, present), g_loss(fake[present]))
    none = torch.zeros_like(present)
    assert conditional_d_loss(d_loss, real, fake, wrong, none, none) == 0
    assert masked_g_loss(g_loss, fake, none) == 0
