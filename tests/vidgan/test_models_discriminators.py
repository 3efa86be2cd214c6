"""D_S frame sampling and summing, D_T pooling and 3-D time mixing, spectral norm everywhere in D."""

import pytest
import torch
import torch.nn.functional as F
from spectral_norm_checks import has_spectral_norm
from torch import nn
from torch.testing import assert_close

from vidgan.models import (
    SpatialDiscriminator,
    TemporalDiscriminator,
    VideoDiscriminator,
    sample_frame_indices,
)
from vidgan.models.blocks import DBlock
from vidgan.models.layers import SN_LAYERS


def test_frame_indices_are_k_distinct_and_uniform(rng):
    draws, frames, k = 4000, 20, 8
    idx = sample_frame_indices(draws, frames, k, rng)
    assert idx.shape == (draws, k)
    assert all(len(set(row)) == k for row in idx.tolist()), "an index repeated within a clip"
    assert idx.min() >= 0 and idx.max() < frames
    counts = torch.bincount(idx.flatten(), minlength=frames).float()
    expected = draws * k / frames  # 1600; binomial std ~ sqrt(1600 * 0.6) ~ 31
    assert (counts - expected).abs().max() < 5 * (expected * (1 - k / frames)) ** 0.5


def test_frame_indices_take_all_frames_when_clip_is_short(rng):
    idx = sample_frame_indices(3, 5, 8, rng)
    assert idx.tolist() == [[0, 1, 2, 3, 4]] * 3


def test_frame_indices_follow_the_generator():
    a = sample_frame_indices(6, 20, 8, torch.Generator().manual_seed(3))
    b = sample_frame_indices(6, 20, 8, torch.Generator().manual_seed(3))
    c = sample_frame_indices(6, 20, 8, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_spatial_scores_only_chosen_frames_and_sums_them(rng):
    torch.manual_seed(0)
    d = SpatialDiscriminator(1, [8, 16], k=3).eval()
    video = torch.rand(2, 6, 1, 16, 16, generator=rng)
    idx = torch.tensor([[0, 2, 5], [1, 3, 4]])
    score = d(video, idx)
    per_frame = torch.stack([d(video, idx[:, j : j + 1]) for j in range(3)], dim=1)
    assert_close(score, per_frame.sum(dim=1))
    changed = video.clone()
    changed[0, 1], changed[1, 0] = 1.0, 1.0  # frames not chosen for their clip
    assert_close(d(changed, idx), score)
    changed[0, 2] = 1.0  # a chosen frame of clip 0
    assert not torch.allclose(d(changed, idx)[0], score[0])


@pytest.mark.parametrize("pool", [2, 4])
def test_temporal_input_is_average_pooled(pool, rng):
    torch.manual_seed(0)
    pooled_d = TemporalDiscriminator(1, [8, 16, 16], pool=pool).eval()
    plain_d = TemporalDiscriminator(1, [8, 16, 16], pool=1).eval()
    plain_d.load_state_dict(pooled_d.state_dict())
    video = torch.rand(2, 5, 1, 32, 32, generator=rng)
    manual = F.avg_pool2d(video.flatten(0, 1), pool).unflatten(0, (2, 5))
    assert_close(pooled_d.pooled(video), manual)
    assert_close(pooled_d(video), plain_d(manual))


def test_temporal_pool_must_be_1_2_or_4():
    with pytest.raises(ValueError, match="pool=3"):
        TemporalDiscriminator(1, [8, 16], pool=3)


def test_resolution_must_survive_every_downsampling():
    d = VideoDiscriminator(1, [8, 16, 16, 16], temporal_pool=4, patch_size=2)  # 3 down-samplings
    d.check_resolution(64)
    with pytest.raises(ValueError, match="temporal discriminator needs a multiple of 64"):
        d.check_resolution(32)


def test_temporal_3d_blocks_mix_time(rng):
    torch.manual_seed(0)
    d = TemporalDiscriminator(1, [8, 16, 16], pool=1).eval()
    video = torch.rand(1, 8, 1, 16, 16, generator=rng)
    changed = video.clone()
    changed[:, 0] = 1.0 - changed[:, 0]
    before, after = d.features_3d(video), d.features_3d(changed)  # (B, C, T, H, W)
    delta = (after - before).abs().amax(dim=(0, 1, 3, 4))  # per output time
    # two blocks of two 3x3x3 convs reach 4 frames away; nothing further can change
    assert (delta[1:5] > 1e-4).all(), delta
    assert (delta[5:] == 0).all(), delta
    assert not torch.allclose(d(video), d(video.flip(1)))


def test_both_discriminators_see_every_frame_they_are_given(rng):
    torch.manual_seed(0)
    d = VideoDiscriminator(1, [8, 16, 16], k=8, temporal_pool=2).eval()
    video = torch.rand(2, 6, 1, 16, 16, generator=rng)
    idx = sample_frame_indices(2, 6, 8, rng)  # T <= k: all frames
    changed = video.clone()
    changed[:, 5] = 0.0  # the last (predicted) frame
    assert not torch.allclose(d.spatial(video, idx), d.spatial(changed, idx))
    assert not torch.allclose(d.temporal(video), d.temporal(changed))


def weighted_layers(net: nn.Module) -> list[nn.Module]:
    """Every submodule that owns a weight, plain or parametrized."""
    return [m for m in net.modules() if "weight" in m._parameters or hasattr(m, "parametrizations")]


def test_every_discriminator_layer_has_spectral_norm():
    d = VideoDiscriminator(3, [8, 16, 16, 32], k=4, temporal_pool=2, num_classes=5)
    layers = weighted_layers(d)
    kinds = {kind for m in layers for kind in SN_LAYERS if isinstance(m, kind)}
    assert kinds == {nn.Conv2d, nn.Conv3d, nn.Linear, nn.Embedding}
    assert len(layers) > 20
    missing = [type(m).__name__ for m in layers if not has_spectral_norm(m)]
    assert not missing


def test_projection_conditioning_uses_labels(rng):
    torch.manual_seed(0)
    d = VideoDiscriminator(1, [8, 16, 16], k=2, temporal_pool=1, num_classes=3).eval()
    video = torch.rand(2, 4, 1, 16, 16, generator=rng)
    idx = sample_frame_indices(2, 4, 2, rng)
    a, b = torch.tensor([0, 1]), torch.tensor([2, 1])
    spatial_a, spatial_b = d.spatial(video, idx, a), d.spatial(video, idx, b)
    assert not torch.allclose(spatial_a[0], spatial_b[0]) and torch.allclose(spatial_a[1], spatial_b[1])
    assert not torch.allclose(d.temporal(video, a)[0], d.temporal(video, b)[0])
    with pytest.raises(ValueError, match="class-conditional"):
        d.temporal(video)


@pytest.mark.parametrize("dims", [2, 3])
def test_d_block_computes_channels_last_with_the_values_of_the_plain_layout(dims):
    """The block switches memory layout for speed only: outputs and gradients match the (N, C, ...) run."""
    torch.manual_seed(0)
    block = DBlock(4, 8, dims=dims)
    x = torch.randn(2, 4, *([3] if dims == 3 else []), 8, 8)
    runs = []
    for memory_format in (torch.contiguous_format, block.memory_format):
        block.memory_format = memory_format
        block.zero_grad()
        inputs = x.clone().requires_grad_(True)
        out = block(inputs)
        out.square().sum().backward()
        runs.append((out, inputs.grad, block.conv1.parametrizations.weight.original.grad.clone()))
    if dims == 2:  # avg_pool3d returns (N, C, T, H, W) memory whatever its input's layout
        assert runs[1][0].is_contiguous(memory_format=block.memory_format)
    for plain, last in zip(*runs):
        assert_close(last, plain, rtol=1e-4, atol=1e-5)  # fp32 sums in another order
