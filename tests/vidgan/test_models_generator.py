"""Generator groups per resolution, latent and class conditioning, per-frame BN, ConvGRU, baselines."""

import pytest
import torch
from spectral_norm_checks import has_spectral_norm
from torch import nn
from torch.testing import assert_close

from vidgan.models import ConvGRUPredictor, VideoGenerator, copy_last_frame, zero_frames
from vidgan.models.blocks import FrameBatchNorm
from vidgan.models.convgru import ConvGRU
from vidgan.models.layers import depth_to_space, space_to_depth


@pytest.mark.parametrize(
    ("resolution", "widths", "patch"),
    [(32, [16, 8], 1), (64, [16, 8, 8], 1), (64, [16, 8], 2), (128, [16, 8, 8, 4], 1)],
)
def test_generator_output_per_resolution(resolution, widths, patch, rng):
    torch.manual_seed(0)
    g = VideoGenerator(3, resolution, 2, 3, widths, latent_dim=8, patch_size=patch)
    context = torch.rand(2, 2, 3, resolution, resolution, generator=rng)
    out = g(context, torch.randn(2, 8, generator=rng))
    assert out.shape == (2, 3, 3, resolution, resolution)
    assert g.state_size == resolution // (patch * 2 ** (len(widths) - 1))
    assert out.min() >= 0 and out.max() <= 1
    assert g(context, torch.randn(2, 8, generator=rng), future_frames=5).shape[1] == 5


def test_one_group_per_resolution_each_started_from_the_context_at_its_scale(rng):
    """widths [16, 8, 8] at 32x32: ConvGRUs at 8, 8, 16; each group's state comes from the context."""
    torch.manual_seed(0)
    g = VideoGenerator(1, 32, 3, 2, [16, 8, 8], latent_dim=4)
    context = torch.rand(2, 3, 1, 32, 32, generator=rng)
    states = g.encoder(context * 2 - 1)
    assert [tuple(h.shape) for h in states] == [(2, 16, 8, 8), (2, 8, 8, 8), (2, 8, 16, 16)]
    assert all(h.min() >= 0 for h in states)  # conv + ReLU
    seen = []
    hooks = [
        group.gru.register_forward_hook(lambda m, args, out: seen.append(out.shape)) for group in g.groups
    ]
    out = g(context, torch.randn(2, 4, generator=rng))
    for hook in hooks:
        hook.remove()
    assert [tuple(s) for s in seen] == [(2, 2, 16, 8, 8), (2, 2, 8, 8, 8), (2, 2, 8, 16, 16)]
    out.square().mean().backward()
    for reduce in g.encoder.reduce:  # every scale's context state reaches the frames
        assert reduce.parametrizations.weight.original.grad.abs().sum() > 0
    assert [len(group.blocks) for group in g.groups] == [2, 2, 2]
    assert [group.blocks[1].upsample for group in g.groups] == [False, True, True]


def test_latent_changes_prediction_and_is_the_only_randomness(rng):
    torch.manual_seed(0)
    g = VideoGenerator(1, 16, 2, 3, [8, 8], latent_dim=4).eval()
    context, z = torch.rand(2, 2, 1, 16, 16, generator=rng), torch.randn(2, 4, generator=rng)
    assert_close(g(context, z), g(context, z))
    assert not torch.allclose(g(context, z), g(context, torch.randn(2, 4, generator=rng)))


def test_class_conditional_generator_uses_labels(rng):
    torch.manual_seed(0)
    g = VideoGenerator(1, 16, 2, 2, [8, 8], latent_dim=4, num_classes=3).eval()
    context, z = torch.rand(1, 2, 1, 16, 16, generator=rng), torch.randn(1, 4, generator=rng)
    assert not torch.allclose(g(context, z, torch.tensor([0])), g(context, z, torch.tensor([2])))
    with pytest.raises(ValueError, match="labels"):
        g(context, z)


def test_generator_rejects_bad_inputs(rng):
    g = VideoGenerator(1, 16, 2, 2, [8, 8], latent_dim=4)
    with pytest.raises(ValueError, match=r"context must be \(B, 2, 1, 16, 16\)"):
        g(torch.rand(1, 3, 1, 16, 16), torch.randn(1, 4))
    with pytest.raises(ValueError, match="z must be"):
        g(torch.rand(1, 2, 1, 16, 16), torch.randn(1, 5))
    with pytest.raises(ValueError, match="must be a multiple"):
        VideoGenerator(1, 18, 2, 2, [8, 8, 8], latent_dim=4)


def test_generator_convs_have_spectral_norm_and_baseline_can_drop_it():
    gan = VideoGenerator(1, 16, 2, 2, [8, 8], latent_dim=4, num_classes=3)
    convs = [m for m in gan.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) > 10 and all(has_spectral_norm(m) for m in convs)
    latent_path = [m for m in gan.modules() if isinstance(m, (nn.Linear, nn.Embedding))]
    assert latent_path and not any(has_spectral_norm(m) for m in latent_path)
    plain = ConvGRUPredictor(1, 16, 2, 2, [8, 8], use_sn=False)
    assert not any(has_spectral_norm(m) for m in plain.modules())


def test_frame_batch_norm_statistics_are_per_frame(rng):
    bn = FrameBatchNorm(3, frames=2, momentum=1.0)  # momentum 1: running stats = last batch's
    frame = torch.randn(4, 1, 3, 5, 5, generator=rng)
    x = torch.cat([frame, 10 * frame + 5], dim=1)  # frame 1 = affine copy of frame 0
    out = bn(x)
    assert_close(out[:, 0], out[:, 1], atol=1e-4, rtol=1e-4)  # pooling over time would not equalise them
    assert_close(out.mean(dim=(0, 3, 4)), torch.zeros(2, 3), atol=1e-5, rtol=0)
    bn.eval()  # eval: per-frame running statistics; frames past the stored ones reuse the last row
    assert_close(bn(x), out, atol=1e-4, rtol=1e-4)
    longer = bn(torch.cat([x, x[:, 1:]], dim=1))
    assert_close(longer[:, 2], out[:, 1], atol=1e-4, rtol=1e-4)


def test_frame_batch_norm_keeps_each_input_dtype(rng):
    """bf16 is normalised in bf16 with fp32 statistics; fp64 (e.g. for gradcheck) stays fp64."""
    bn = FrameBatchNorm(3, frames=2, momentum=1.0)
    x = torch.randn(4, 2, 3, 5, 5, generator=rng)
    reference = bn(x)
    narrow = bn(x.bfloat16())
    assert narrow.dtype == torch.bfloat16
    assert_close(narrow.float(), reference, atol=0.05, rtol=0.02)
    wide = bn.double()(x.double())
    assert wide.dtype == torch.float64
    assert_close(wide.float(), reference, atol=1e-5, rtol=1e-5)
    # Eval mode (running statistics; the same path as synchronised statistics) keeps fp64 too.
    bn.eval()
    fine = x.double() + 1e-9 * torch.randn(x.shape, generator=rng, dtype=torch.float64)  # finer than fp32
    mean, var = bn.running_mean[None, :, :, None, None], bn.running_var[None, :, :, None, None]
    gain, bias = bn.gain_param[:, None, None], bn.bias_param[:, None, None]
    assert_close(bn(fine), (fine - mean) / torch.sqrt(var + bn.eps) * gain + bias, atol=1e-12, rtol=1e-12)


def test_conditional_batch_norm_gain_and_bias_from_condition(rng):
    bn = FrameBatchNorm(2, frames=2, cond_dim=4)
    x = torch.randn(3, 2, 2, 4, 4, generator=rng)
    cond = torch.randn(3, 4, generator=rng)
    out = bn(x, cond)
    normed = (x - x.mean(dim=(0, 3, 4), keepdim=True)) / (
        x.var(dim=(0, 3, 4), keepdim=True, correction=0) + 1e-5
    ).sqrt()
    gain = 1 + bn.gain(cond)[:, None, :, None, None]
    assert_close(out, normed * gain + bn.bias(cond)[:, None, :, None, None], atol=1e-5, rtol=1e-5)


def test_convgru_recurrence_matches_its_equations(rng):
    torch.manual_seed(0)
    gru = ConvGRU(2, 3)
    h0, x = torch.randn(1, 3, 4, 4, generator=rng), torch.randn(1, 2, 4, 4, generator=rng)
    states = gru(h0, steps=3, x=x)
    cell = gru.cell
    h = h0
    for t in range(3):
        wx = cell.input_path(x)
        gates = torch.sigmoid(cell.hidden_gates(h) + wx[:, :6])
        r, u = gates[:, :3], gates[:, 3:]
        c = torch.tanh(cell.hidden_candidate(r * h) + wx[:, 6:])
        h = u * h + (1 - u) * c
        assert_close(states[:, t], h)
    with pytest.raises(ValueError, match="input_channels=2"):
        gru(h0, steps=1)


def test_convgru_takes_one_input_per_step(rng):
    """A (B, T, C, H, W) input feeds step t with x[:, t]: the same as unrolling one step at a time."""
    torch.manual_seed(0)
    gru = ConvGRU(2, 3)
    h0, xs = torch.randn(1, 3, 4, 4, generator=rng), torch.randn(1, 4, 2, 4, 4, generator=rng)
    states = gru(h0, steps=4, x=xs)
    h = h0
    for t in range(4):
        h = gru(h, steps=1, x=xs[:, t])[:, 0]
        assert_close(states[:, t], h)
    with pytest.raises(ValueError, match="T=4 steps, expected 3"):
        gru(h0, steps=3, x=xs)


def test_space_to_depth_is_lossless(rng):
    video = torch.rand(2, 3, 3, 8, 8, generator=rng)
    patches = space_to_depth(video, 4)
    assert patches.shape == (2, 3, 48, 2, 2)
    assert torch.equal(patches[0, 0, :16, 0, 0], video[0, 0, 0, :4, :4].flatten())
    assert torch.equal(depth_to_space(patches, 4), video)


def test_trivial_baselines(rng):
    context = torch.rand(2, 3, 1, 4, 4, generator=rng)
    copied = copy_last_frame(context, 5)
    assert copied.shape == (2, 5, 1, 4, 4) and torch.equal(copied[:, 4], context[:, 2])
    assert torch.equal(zero_frames(context, 5), torch.zeros(2, 5, 1, 4, 4))


def test_output_margin_reaches_pure_black_and_white_at_finite_preactivations(rng):
    """tanh(+-3) = +-0.995: without a margin that is a 0.25% haze, with 0.05 it clamps to 0 and 1."""
    context = torch.rand(1, 2, 1, 16, 16, generator=rng)
    for margin, black, white in [(0.0, False, False), (0.05, True, True)]:
        g = ConvGRUPredictor(1, 16, 2, 2, [8, 8], output_margin=margin).eval()
        nn.init.zeros_(g.out_conv.weight)
        frames = {}
        for level in (-3.0, 3.0):
            nn.init.constant_(g.out_conv.bias, level)
            frames[level] = g(context)
            assert frames[level].min() >= 0 and frames[level].max() <= 1
        assert bool((frames[-3.0] == 0).all()) is black and bool((frames[3.0] == 1).all()) is white
    with pytest.raises(ValueError, match="output_margin=-0.1 must be >= 0"):
        VideoGenerator(1, 16, 2, 2, [8, 8], latent_dim=4, output_margin=-0.1)
