"""Every configs/vidgan/*.yaml instantiates through `vidgan fit` and trains on CPU.

Moving MNIST configs run two batches (a D step, then a D and a G step) at batch 2 on a few
generated sequences. The paper-scale GPU configs keep their networks (~90M parameters) and run one
batch (a D step and a validation batch of the EMA generator) at batch 1 in fp32 on CPU, on a tiny
folder of real video files (the `class_root` fixture).
"""

from pathlib import Path

import pytest

from ganforge.checkpoint import load_checkpoint
from vidgan.cli import lightning_main

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "vidgan"
MOVING_MNIST = ["--data.train_sequences", "4", "--data.val_sequences", "2", "--data.batch_size", "2",
                "--trainer.fast_dev_run", "2"]  # fmt: skip
ON_CPU = ["--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.num_nodes", "1",
          "--trainer.precision", "32-true", "--data.num_workers", "0", "--data.pin_memory", "false",
          "--data.batch_size", "1", "--trainer.fast_dev_run", "1"]  # fmt: skip
OVERRIDES = {
    "moving_mnist.yaml": MOVING_MNIST,
    "moving_mnist_tiny.yaml": MOVING_MNIST,
    "moving_mnist_convgru.yaml": MOVING_MNIST,
    "kinetics600_64.yaml": ON_CPU,
    "bair_64.yaml": ON_CPU,
    "own_videos_64.yaml": ON_CPU,
}
QUIET = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false"]  # fmt: skip


def test_every_config_is_covered():
    assert {p.name for p in CONFIG_DIR.glob("*.yaml")} == set(OVERRIDES)


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_config_fits_on_cpu(name, tmp_path, class_root):
    argv = ["fit", "--config", str(CONFIG_DIR / name), *OVERRIDES[name], *QUIET,
            "--trainer.default_root_dir", str(tmp_path)]  # fmt: skip
    if OVERRIDES[name] is ON_CPU:
        argv += ["--data.data_dir", str(class_root)]
    assert lightning_main(argv) == 0


def test_bad_model_value_is_a_one_line_error(tmp_path, capsys):
    argv = ["fit", "--config", str(CONFIG_DIR / "moving_mnist_tiny.yaml"), *QUIET,
            "--model.init_args.temporal_pool", "3", "--trainer.default_root_dir", str(tmp_path)]  # fmt: skip
    assert lightning_main(argv) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "vidgan: error: model: temporal discriminator pool=3 must be one of (1, 2, 4)"
    )


def test_the_model_takes_its_frame_settings_from_the_data_block(tmp_path, capsys):
    argv = ["fit", "--config", str(CONFIG_DIR / "moving_mnist_tiny.yaml"), *QUIET,
            "--data.context_frames", "3", "--data.future_frames", "2", "--data.image_size", "32",
            "--data.train_sequences", "2", "--data.batch_size", "2", "--trainer.max_steps", "1",
            "--trainer.limit_val_batches", "0", "--trainer.default_root_dir", str(tmp_path)]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        lightning_main([*argv, "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert printed.count("context_frames: 3") == 1 and "resolution" not in printed  # stated once: in data
    assert lightning_main(argv) == 0
    hparams = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt", family="vidgan")["hyper_parameters"]
    assert {k: hparams[k] for k in ("context_frames", "future_frames", "channels", "resolution")} == {
        "context_frames": 3, "future_frames": 2, "channels": 1, "resolution": 32,
    }  # fmt: skip


def test_a_config_with_data_source_says_how_to_rewrite_it(tmp_path, capsys):
    old = tmp_path / "old.yaml"
    old.write_text(
        "model:\n  class_path: vidgan.module.VideoGAN\ndata:\n  source: moving_mnist\n  digits: 1\n"
    )
    assert lightning_main(["fit", "--config", str(old), *QUIET]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vidgan: error: data: `source:` is gone")
    assert "class_path: vidgan.data.MovingMNISTDataModule" in err[0]


def test_a_data_block_without_class_path_is_named(tmp_path, capsys):
    config = tmp_path / "bare.yaml"
    config.write_text("model:\n  class_path: vidgan.module.VideoGAN\ndata:\n  context_frames: 4\n")
    assert lightning_main(["fit", "--config", str(config), *QUIET]) == 1
    assert "data: name a class_path: vidgan.data.MovingMNISTDataModule" in capsys.readouterr().err
