"""t2i's fd_local feature net: trained by ganforge.metrics' loop, saved and reloaded, old files included."""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.checkpoint import load_checkpoint, read_header, save_artifact
from t2i.eval.image_features import (
    FAMILY,
    LocalFeatureNet,
    load_local_features,
    save_local_features,
    train_local_features,
)


def test_fd_local_net_trains_saves_and_reloads(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(6, 3, 16, 16, generator=gen)
    targets = (images.mean(dim=(2, 3)) > 0.5).float()  # (6, 3): which channels are bright
    net, accuracy = train_local_features(images, targets, steps=3, batch_size=64, seed=0)
    assert 0 <= accuracy <= 1 and not net.training and net(images).shape == (6, LocalFeatureNet.num_features)
    config = save_local_features(net, tmp_path / "fd_local.pt", train_images=6)
    assert config == {"targets": 3, "image_size": 16, "train_images": 6}
    assert read_header(load_checkpoint(tmp_path / "fd_local.pt"))["family"] == FAMILY
    loaded, loaded_config = load_local_features(tmp_path / "fd_local.pt")
    assert loaded_config == config and torch.equal(loaded(images), net(images))


def test_fd_local_nets_saved_by_the_previous_judge_helper_still_load(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = LocalFeatureNet(targets=4, image_size=16).eval()
    # What `save_judge(net, config, path, "fd_local")` wrote before ganforge.metrics saved feature nets.
    config = {"targets": 4, "image_size": 16, "train_images": 10}
    save_artifact(tmp_path / "fd_local.pt", "t2i-judge-fd_local", config, net.state_dict())
    loaded, loaded_config = load_local_features(tmp_path / "fd_local.pt")
    images = torch.rand(2, 3, 16, 16)
    assert loaded_config == config and torch.equal(loaded(images), net(images))
