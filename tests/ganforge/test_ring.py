"""The ring toy: metric definitions by hand, the `ganforge ring` command, and real learning."""

import json

import pytest
import torch
from PIL import Image

from ganforge.cli import main
from ganforge.examples.ring import STD, ring_metrics, ring_modes, train_ring


def test_metrics_on_constructed_samples():
    modes = ring_modes()
    on_modes = modes.repeat_interleave(100, dim=0)  # 800 points exactly on the 8 modes
    assert ring_metrics(on_modes) == {"modes_covered": 8, "high_quality_fraction": 1.0}
    one_mode = modes[:1].repeat(800, 1)
    assert ring_metrics(one_mode)["modes_covered"] == 1
    # 4 * STD away from every mode: not high quality, so no mode is covered
    off = modes * (1 + 4 * STD / 2.0)
    assert ring_metrics(off) == {"modes_covered": 0, "high_quality_fraction": 0.0}


def test_a_mode_needs_a_fifth_of_its_share():
    modes = ring_modes()
    # 700 points on mode 0, 20 on mode 1 (fair share 720 / 8 = 90, a fifth = 18 -> covered),
    # 10 on mode 2 (not covered), none elsewhere
    pts = torch.cat([modes[0].repeat(700, 1), modes[1].repeat(20, 1), modes[2].repeat(10, 1)])
    assert ring_metrics(pts)["modes_covered"] == 2


def test_ring_command_writes_outputs(tmp_path):
    assert main(["ring", "--out", str(tmp_path), "--steps", "30", "--quiet"]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) >= {"modes_covered", "high_quality_fraction"}
    assert 0 <= metrics["modes_covered"] <= 8
    assert Image.open(tmp_path / "samples.png").size == (500, 500)


def test_ring_command_rejects_bad_steps(capsys):
    assert main(["ring", "--out", "x", "--steps", "0"]) == 2
    assert "--steps=0" in capsys.readouterr().err


@pytest.mark.slow
def test_ring_gan_covers_the_modes(tmp_path):
    """The default recipe at 6000 of the CLI's 8000 steps covers the modes sharply.

    Measured: 8/8 modes with 0.81-0.84 high quality at 6000 steps (seeds 0, 1); an untrained G
    scores ~0. The CLI default (8000 steps) is held to the issue's 0.8; the suite keeps a small
    margin for the shorter run.
    """
    metrics = train_ring(str(tmp_path), steps=6000, seed=0, progress=False)
    assert metrics["modes_covered"] >= 7, metrics
    assert metrics["high_quality_fraction"] >= 0.75, metrics


def test_sample_media_is_a_scatter_image():
    from ganforge.examples.ring import RingGAN
    from ganforge.media import ImageMedia

    media = RingGAN(hidden=16).sample(torch.randn(64, 2))
    assert isinstance(media["points"], ImageMedia)
    image = media["points"].images
    assert image.shape == (1, 3, 500, 500) and 0 <= image.min() and image.max() <= 1
    assert image.std() > 0.05  # something was drawn on the white canvas
