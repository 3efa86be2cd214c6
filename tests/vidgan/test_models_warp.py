"""The warp output head: backward bilinear warp, the frame-by-frame composite, a generator that starts
at copy-last, and a flow that gradient descent moves to the true displacement."""

import pytest
import torch
from torch.testing import assert_close

from ganforge.errors import UserError
from vidgan.models import VideoGenerator
from vidgan.models.warp import WarpHead, warp, warp_roll_out


def test_zero_flow_is_the_identity(rng):
    image = torch.rand(2, 3, 8, 12, generator=rng)
    assert_close(warp(image, torch.zeros(2, 2, 8, 12)), image)


def test_whole_pixel_flow_shifts_the_image_and_brings_in_black(rng):
    image = torch.rand(1, 1, 6, 6, generator=rng)
    flow = torch.zeros(1, 2, 6, 6)
    flow[:, 0], flow[:, 1] = 2.0, -1.0  # out[y, x] = image[y - 1, x + 2]
    out = warp(image, flow)
    assert_close(out[..., 1:, :4], image[..., :5, 2:])
    assert out[..., :, 4:].abs().max() < 1e-6 and out[..., 0, :].abs().max() < 1e-6  # float grid rounding


def test_half_pixel_flow_interpolates_linearly(rng):
    image = torch.rand(1, 1, 4, 4, generator=rng)
    flow = torch.zeros(1, 2, 4, 4)
    flow[:, 0] = 0.5
    assert_close(warp(image, flow)[..., :3], (image[..., :3] + image[..., 1:]) / 2)


def test_roll_out_composes_warped_and_drawn_frames_step_by_step(rng):
    last = torch.rand(2, 1, 6, 6, generator=rng)
    pixels = torch.rand(2, 3, 1, 6, 6, generator=rng)
    flow = torch.zeros(2, 3, 2, 6, 6)
    flow[:, :, 0] = 1.0  # every step moves the frame one pixel to the left
    keep = torch.full((2, 3, 1, 6, 6), 1e4)  # blend 1: the warped previous frame only
    frames = warp_roll_out(last, flow, keep, pixels)
    for t in range(3):
        assert_close(frames[:, t, ..., : 5 - t], last[..., t + 1 :])
    assert_close(warp_roll_out(last, flow, -keep, pixels), pixels)  # blend 0: the drawn frames
    half = warp_roll_out(last, torch.zeros_like(flow), torch.zeros_like(keep), pixels)
    assert_close(half[:, 1], (half[:, 0] + pixels[:, 1]) / 2)


@pytest.mark.parametrize("latent_dim", [0, 4])
def test_a_new_warp_generator_predicts_copy_last(latent_dim, rng):
    torch.manual_seed(0)
    g = VideoGenerator(1, 16, 2, 3, [8, 8], latent_dim=latent_dim, patch_size=2, output="warp")
    context = torch.rand(2, 2, 1, 16, 16, generator=rng)
    z = torch.randn(2, latent_dim, generator=rng) if latent_dim else None
    out = g(context, z)
    assert out.shape == (2, 3, 1, 16, 16) and out.dtype == torch.float32
    drift = 1 - torch.sigmoid(torch.tensor(4.0)) ** 3  # three blends of 0.98 with frames in [0, 1]
    assert (out - context[:, -1:]).abs().max() <= drift
    out.square().mean().backward()
    assert g.warp_head.conv.weight.grad.abs().sum() > 0  # the head learns from the first step


def test_warp_head_upsamples_a_smooth_flow_to_full_resolution():
    head = WarpHead(4, scale=4)
    with torch.no_grad():
        head.conv.bias.copy_(torch.tensor([1.5, -0.5, 2.0]))
    flow, blend = head(torch.rand(2, 4, 3, 3))
    assert flow.shape == (2, 2, 12, 12) and blend.shape == (2, 1, 12, 12)
    assert_close(flow[:, 0], torch.full((2, 12, 12), 1.5))
    assert_close(blend, torch.full((2, 1, 12, 12), 2.0))


def test_gradient_descent_on_the_flow_finds_the_displacement():
    """A blurred square moved 3 px right: one global flow learned through the warp reaches -3 px."""
    y, x = torch.meshgrid(torch.arange(24.0), torch.arange(24.0), indexing="ij")
    square = lambda cx: torch.sigmoid(4 - 2 * ((x - cx).abs().maximum((y - 12).abs()) - 3))  # noqa: E731
    source, target = square(9.0)[None, None], square(12.0)[None, None]
    shift = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([shift], lr=0.1)
    for _ in range(200):
        flow = shift[None, :, None, None].expand(1, 2, 24, 24)
        loss = (warp(source, flow) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert_close(shift.detach(), torch.tensor([-3.0, 0.0]), atol=0.1, rtol=0)


def test_unknown_output_is_refused():
    with pytest.raises(UserError, match="output='flow' must be one of"):
        VideoGenerator(1, 16, 2, 2, [8, 8], latent_dim=4, output="flow")
