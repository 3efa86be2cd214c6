"""Moving MNIST on real digits: digit pools, bouncing, the (T, N, H, W) layout, the on-the-fly stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ganforge.resumable import ResumableSampler
from vidgan.data import MovingMNISTDataset, MovingMNISTStream, write_moving_mnist
from vidgan.data.mnist_digits import DIGIT_SIZE, digit_pool, mnist_digits
from vidgan.data.moving_mnist import bouncing_trajectories, render_sequences, sample_sequences


def test_train_and_test_digit_pools_are_disjoint_and_class_balanced():
    images, labels = mnist_digits()
    train, test = digit_pool("train"), digit_pool("test")
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8 and images.max() == 255
    assert len(train) == 4000 and len(test) == 1000
    assert not set(train.tolist()) & set(test.tolist())
    assert sorted(set(train.tolist()) | set(test.tolist())) == list(range(5000))
    assert np.bincount(labels[test], minlength=10).tolist() == [100] * 10


def test_sequences_only_use_digits_from_their_pool():
    rng = np.random.default_rng(0)
    _, test_ids = sample_sequences(64, 4, 40, 2, "test", rng)
    _, train_ids = sample_sequences(64, 4, 40, 2, "train", rng)
    assert set(test_ids.ravel().tolist()) <= set(digit_pool("test").tolist())
    assert set(train_ids.ravel().tolist()) <= set(digit_pool("train").tolist())


def test_trajectories_stay_inside_the_canvas_and_bounce_off_the_walls():
    canvas = 36
    corners = bouncing_trajectories(8, 2, 200, canvas, np.random.default_rng(1)).astype(int)
    assert corners.min() == 0 and corners.max() == canvas  # every wall is reached in 200 frames
    bounces = 0
    for wall in (0, canvas):
        n, d, t, axis = np.nonzero(corners[:, :, 1:-2] == wall)
        t = t + 1  # frames that touch the wall
        arriving = np.abs(corners[n, d, t, axis] - corners[n, d, t - 1, axis]) >= 2
        # A clamp without reflection would stay on the wall; a bounce leaves it at once.
        assert np.all(corners[n, d, t + 2, axis][arriving] != wall)
        bounces += int(arriving.sum())
    assert bounces > 20


def test_rendered_digits_are_never_clipped_by_the_frame():
    images = mnist_digits()[0][digit_pool("train")[:6]].reshape(6, 1, DIGIT_SIZE, DIGIT_SIZE)
    corners = bouncing_trajectories(6, 1, 30, 64 - DIGIT_SIZE, np.random.default_rng(2))
    frames = render_sequences(images, corners, 64)  # (30, 6, 64, 64)
    ink = frames.reshape(30, 6, -1).astype(np.int64).sum(-1)
    expected = images.reshape(6, -1).astype(np.int64).sum(-1)
    assert np.array_equal(ink, np.broadcast_to(expected, (30, 6)))  # all ink of every digit in every frame
    for t in (0, 15, 29):  # and it sits exactly where the trajectory says
        y, x = corners[3, 0, t]
        assert np.array_equal(frames[t, 3, y : y + DIGIT_SIZE, x : x + DIGIT_SIZE], images[3, 0])


def test_written_files_have_the_public_layout_and_are_seeded(tmp_path):
    first = write_moving_mnist(tmp_path / "a", train=5, test=3, frames=6, size=40, digits=2, seed=7)
    again = write_moving_mnist(tmp_path / "b", train=5, test=3, frames=6, size=40, digits=2, seed=7)
    train, test = np.load(first["train"]), np.load(first["test"])
    assert train.dtype == np.uint8 and train.shape == (6, 5, 40, 40)
    assert test.dtype == np.uint8 and test.shape == (6, 3, 40, 40)
    assert np.array_equal(train, np.load(again["train"])) and np.array_equal(test, np.load(again["test"]))
    assert not np.array_equal(train[:, :3], test)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["test.npy", "train.npy"]


def test_dataset_round_trips_the_npy_layout(tmp_path):
    sequences = np.random.default_rng(3).integers(0, 256, size=(20, 4, 64, 64), dtype=np.uint8)
    np.save(tmp_path / "mnist_test_seq.npy", sequences)  # the public file's layout
    dataset = MovingMNISTDataset(tmp_path / "mnist_test_seq.npy")
    assert len(dataset) == 4 and dataset.image_size == (64, 64)
    context, target = dataset[2]
    assert context.shape == (10, 1, 64, 64) and target.shape == (10, 1, 64, 64)
    assert context.dtype == torch.float32
    torch.testing.assert_close(
        torch.cat([context, target]).squeeze(1) * 255, torch.from_numpy(sequences[:, 2]).float()
    )
    short = MovingMNISTDataset(sequences, context_frames=3, future_frames=2)
    context, target = short[1]
    assert context.shape == (3, 1, 64, 64) and target.shape == (2, 1, 64, 64)
    assert torch.equal((target.squeeze(1) * 255).round().byte(), torch.from_numpy(sequences[3:5, 1]))


def test_dataset_rejects_wrong_layouts_naming_the_file(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((20, 64, 64), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"flat\.npy.*\(T, N, H, W\)"):
        MovingMNISTDataset(tmp_path / "flat.npy")
    with pytest.raises(ValueError, match="T=20"):
        MovingMNISTDataset(np.zeros((20, 2, 64, 64), dtype=np.uint8), context_frames=15, future_frames=10)
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        MovingMNISTDataset(tmp_path / "missing.npy")


def _epoch(stream: MovingMNISTStream, epoch: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    sampler = ResumableSampler(
        stream, num_replicas=world_size, rank=rank, shuffle=False, fresh_each_epoch=True
    )
    sampler.set_epoch(epoch)
    return torch.stack([torch.cat(stream[i]) for i in sampler])


def test_stream_is_new_every_epoch_seeded_and_distinct_per_rank():
    stream = MovingMNISTStream(6, context_frames=2, future_frames=2, size=32, seed=5)
    first, second = _epoch(stream, 0), _epoch(stream, 1)
    assert first.shape == (6, 4, 1, 32, 32) and len(stream) == 6
    assert not torch.equal(first, second)  # fresh sequences each epoch
    assert torch.equal(first, _epoch(MovingMNISTStream(6, 2, 2, size=32, seed=5), 0))
    rank0, rank1 = _epoch(stream, 0, 0, 2), _epoch(stream, 0, 1, 2)
    assert rank0.shape[0] == rank1.shape[0] == 3 and not torch.equal(rank0, rank1)


def test_stream_items_depend_only_on_their_index():
    stream = MovingMNISTStream(8, context_frames=2, future_frames=1, size=32, seed=0)
    loader = DataLoader(stream, batch_size=None, num_workers=2, sampler=range(8))
    clips = [torch.cat(item) for item in loader]  # drawn in two worker processes
    assert all(torch.equal(clip, torch.cat(stream[i])) for i, clip in enumerate(clips))
    flat = torch.stack(clips).flatten(1)
    assert len({tuple(row.tolist()) for row in flat}) == 8  # no two indices give the same sequence
