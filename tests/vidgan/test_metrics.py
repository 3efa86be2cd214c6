"""vidgan.metrics and vidgan.local_features against hand-computed and reference values (the Fréchet
distance itself: tests/ganforge/test_metrics.py)."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch.testing import assert_close
from vidgan_clips import moving_square_clips

from ganforge.checkpoint import load_checkpoint, read_header
from ganforge.errors import CheckpointError
from vidgan.local_features import (
    LocalVideoFeatures,
    load_local_features,
    save_local_features,
    shuffle_frames,
    train_local_features,
)
from vidgan.metrics import (
    MAX_PSNR,
    PredictionScores,
    best_of_samples,
    frame_metrics,
    mean_of_samples,
    sample_frame_metrics,
)


def smooth_frames(n, channels, size, seed):
    """Natural-ish frames (n, channels, size, size) in [0, 1]: blurred noise."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, channels, size + 4, size + 4, generator=gen)
    return torch.nn.functional.avg_pool2d(noise, 5, 1)


def test_mse_mae_are_summed_over_pixels_per_frame_openstl_convention():
    target = torch.zeros(2, 3, 2, 16, 16)  # (B, T, C, H, W): 512 values per frame
    pred = target.clone()
    pred[0, 0, :, :8, :] = 0.5  # 256 values off by 0.5
    pred[1, 2] = 0.25  # all 512 values off by 0.25
    scores = frame_metrics(pred, target)
    assert_close(scores["mse"], torch.tensor([[256 * 0.25, 0, 0], [0, 0, 512 * 0.0625]]))
    assert_close(scores["mae"], torch.tensor([[256 * 0.5, 0, 0], [0, 0, 512 * 0.25]]))
    # PSNR of the uniform error frame: 10 log10(1 / 0.0625); identical frames are capped, not infinite.
    assert_close(scores["psnr"][1, 2], torch.tensor(10 * np.log10(16.0), dtype=torch.float32))
    assert scores["psnr"][0, 1] == MAX_PSNR
    # Means over sequences and steps, OpenSTL style: the mean over (B, T) of the per-frame sums.
    accumulated = PredictionScores()
    accumulated.update(pred[:, None], target)
    assert accumulated.per_step()["mean_of_samples"]["mse"] == pytest.approx([32.0, 0.0, 16.0])
    assert accumulated.means()["mean_of_samples"]["mse"] == pytest.approx((64 + 32) / 6)
    assert accumulated.means()["mean_of_samples"]["mae"] == pytest.approx((128 + 128) / 6)
    with pytest.raises(ValueError, match="at least 11x11"):
        frame_metrics(pred[..., :8, :8], target[..., :8, :8])


@pytest.mark.parametrize("channels", [1, 3])
def test_psnr_and_ssim_match_scikit_image(channels):
    target = smooth_frames(4, channels, 32, seed=0)
    gen = torch.Generator().manual_seed(1)
    pred = (target + 0.1 * torch.randn(target.shape, generator=gen)).clamp(0, 1)
    scores = frame_metrics(pred[None], target[None])
    for i in range(4):
        p = pred[i].permute(1, 2, 0).double().numpy()
        t = target[i].permute(1, 2, 0).double().numpy()
        ssim = structural_similarity(
            t,
            p,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=2,
        )
        assert scores["ssim"][0, i].item() == pytest.approx(ssim, abs=1e-5)
        assert scores["psnr"][0, i].item() == pytest.approx(
            peak_signal_noise_ratio(t, p, data_range=1.0), abs=1e-4
        )
    assert 0.3 < scores["ssim"].mean() < 0.9  # a real, non-degenerate comparison


def test_best_of_samples_picks_each_sequences_highest_ssim_sample():
    target = smooth_frames(6, 1, 24, seed=2).view(2, 3, 1, 24, 24)
    gen = torch.Generator().manual_seed(3)
    noisy = (target + 0.2 * torch.randn(target.shape, generator=gen)).clamp(0, 1)
    brighter = (target + 0.3).clamp(0, 1)
    # Sequence 0: sample 1 is exact. Sequence 1: sample 0 is exact. The other samples are worse.
    pred = torch.stack(
        [torch.stack([noisy[0], target[0], brighter[0]]), torch.stack([target[1], noisy[1], brighter[1]])]
    )
    scores = sample_frame_metrics(pred, target)
    best = best_of_samples(scores)
    assert_close(best["mse"], torch.zeros(2, 3))
    assert_close(best["ssim"], torch.ones(2, 3))
    assert_close(mean_of_samples(scores)["mse"], scores["mse"].mean(dim=1))
    # The best sample has the highest SSIM averaged over frames, and all its metrics are reported:
    # sample 1 (mean SSIM 0.55 > 0.5) wins although its MSE is worse and its last frame's SSIM is lower.
    handmade = {
        "ssim": torch.tensor([[[0.5, 0.5], [0.9, 0.2]]]),
        "mse": torch.tensor([[[1.0, 1.0], [3.0, 5.0]]]),
    }
    assert_close(best_of_samples(handmade)["mse"], torch.tensor([[3.0, 5.0]]))
    assert_close(best_of_samples(handmade)["ssim"], torch.tensor([[0.9, 0.2]]))


def test_shuffled_frames_never_keep_the_original_order():
    clips = torch.arange(3.0).view(1, 3, 1, 1, 1).expand(200, -1, -1, -1, -1)
    shuffled = shuffle_frames(clips, torch.Generator().manual_seed(0))
    orders = shuffled.flatten(1)
    assert not (orders == torch.tensor([0.0, 1.0, 2.0])).all(dim=1).any()
    assert (orders.sort(dim=1).values == torch.tensor([0.0, 1.0, 2.0])).all()  # a permutation of the frames


def test_local_feature_net_learns_real_from_shuffled_on_held_out_clips():
    net, train_accuracy = train_local_features(moving_square_clips(64, 5, size=16, seed=0), steps=40, seed=0)
    held_out = moving_square_clips(64, 5, size=16, seed=9)
    shuffled = shuffle_frames(held_out, torch.Generator().manual_seed(1))
    with torch.no_grad():
        accuracy = ((net.logits(held_out) > 0).float().mean() + (net.logits(shuffled) < 0).float().mean()) / 2
    assert accuracy > 0.75, f"held-out real-vs-shuffled accuracy {accuracy:.2f} (chance 0.5)"
    assert train_accuracy > 0.6
    assert net(held_out).shape == (64, 64)


def test_local_feature_net_files_round_trip_and_old_headerless_ones_still_load(tmp_path):
    torch.manual_seed(0)
    net = LocalVideoFeatures(channels=1, frames=5)
    clips = moving_square_clips(4, 5, size=16, seed=0)
    save_local_features(net, tmp_path / "new.pt")
    assert read_header(load_checkpoint(tmp_path / "new.pt"))["family"] == "vidgan-fd-local"
    # The format before the ganforge header: shape and weights in a plain dict.
    torch.save({"channels": 1, "frames": 5, "state_dict": net.state_dict()}, tmp_path / "old.pt")
    for name in ("new.pt", "old.pt"):
        loaded = load_local_features(tmp_path / name)
        assert (loaded.channels, loaded.frames) == (1, 5) and not loaded.training
        assert_close(loaded(clips), net(clips), rtol=0, atol=0)
    torch.save({"frames": 5}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="fd_local net '.*other.pt' is not a saved vidgan-fd-local net"):
        load_local_features(tmp_path / "other.pt")
