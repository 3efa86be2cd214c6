"""Every `fit` entry point ends with `last.ckpt` holding its final state, and a last validation of it.

Each case fits for `MAX_STEPS` steps (generator steps for the GANs, optimiser steps for the CLIP stage
and the ConvGRU baseline) with periodic checkpoints every `EVERY` steps and validation every
`VAL_EVERY`: neither interval divides `MAX_STEPS`, the case Lightning's own `ModelCheckpoint` left
stale (it wrote last.ckpt at the last multiple of the interval and never again). The checks:
- `last.ckpt` is at step `MAX_STEPS` and its weights equal the module's in-memory weights at the end of
  training, bit for bit;
- the periodic checkpoints are the newest `keep_last` (2) multiples of the interval: steps 4 and 6,
  the save at step 2 pruned;
- where the stage validates, `validate --ckpt_path last.ckpt` reproduces the fit's last logged
  validation metrics, which were computed on those final weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganforge.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
MAX_STEPS, EVERY, VAL_EVERY = 7, 2, 3
QUIET = [
    "--trainer.logger=false",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]
T2I_TEXT = [
    "--model.init_args.clip_path=null",
    "--model.init_args.text_width=64",
    "--model.init_args.text_layers=1",
]
T2I_DATA = [
    "--data.init_args.shapes.train=24",
    "--data.init_args.shapes.val=8",
    "--data.init_args.batch_size=8",
]

# name -> (cli module, config, overrides, validates)
CASES = {
    "ring": ("ganforge.cli", "configs/ganforge/ring.yaml", [], False),
    "vidgan": (
        "vidgan.cli",
        "configs/vidgan/moving_mnist_tiny.yaml",
        [
            "--data.train_sequences=32",
            "--data.val_sequences=8",
            "--data.batch_size=4",
            "--trainer.limit_val_batches=1",
        ],
        True,
    ),
    "convgru": (
        "vidgan.cli",
        "configs/vidgan/moving_mnist_convgru.yaml",
        [
            "--data.train_sequences=16",
            "--data.val_sequences=4",
            "--data.batch_size=4",
            "--trainer.limit_val_batches=1",
            "--model.init_args.g_widths=[8,8]",
            "--data.context_frames=3",
            "--data.future_frames=2",
        ],
        True,
    ),
    "clip": (
        "t2i.cli",
        "configs/t2i/shapes_clip_tiny.yaml",
        [*T2I_DATA, "--data.init_args.batch_size=8"],
        True,
    ),
    "layout": ("t2i.cli", "configs/t2i/shapes_layout_tiny.yaml", T2I_DATA, True),
    "image": ("t2i.cli", "configs/t2i/shapes_image_tiny.yaml", [*T2I_TEXT, *T2I_DATA], False),  # no val step
}


def run(cli: str, argv: list[str]) -> None:
    module = __import__(cli, fromlist=["main"])
    assert module.main(argv) == 0, f"{cli} {' '.join(argv)} failed"


@pytest.mark.parametrize("name", sorted(CASES))
def test_last_checkpoint_holds_the_final_state(name: str, tmp_path: Path) -> None:
    cli, config, overrides, validates = CASES[name]
    record, ckpt_dir = tmp_path / "record", tmp_path / "ckpt"
    data = [f"--data.init_args.data_dir={tmp_path / 'data'}"] if cli == "t2i.cli" else []
    common = [
        "--config",
        str(ROOT / config),
        *overrides,
        *data,
        *QUIET,
        f"--trainer.default_root_dir={tmp_path}",
    ]
    callbacks = [
        "--trainer.callbacks+=ganforge.run_checkpoint.RunCheckpoint",
        f"--trainer.callbacks.dirpath={ckpt_dir}",
        f"--trainer.callbacks.every_n_train_steps={EVERY}",
        "--trainer.callbacks.keep_last=2",
        "--trainer.callbacks+=run_recorder.RunRecorder",
        f"--trainer.callbacks.out={record}",
    ]
    run(
        cli,
        [
            "fit",
            *common,
            *callbacks,
            f"--trainer.max_steps={MAX_STEPS}",
            f"--trainer.val_check_interval={VAL_EVERY}",
            "--trainer.check_val_every_n_epoch=null",
        ],
    )

    last = load_checkpoint(ckpt_dir / "last.ckpt")
    assert last["global_step"] == MAX_STEPS
    final = torch.load(record / "final_state.pt", weights_only=True)
    assert last["state_dict"].keys() == final.keys()
    for key, value in final.items():
        assert torch.equal(last["state_dict"][key], value), f"{name}: last.ckpt differs from the final {key}"
    periodic = sorted(p.name for p in ckpt_dir.glob("*step=*.ckpt"))
    assert [int(p.split("step=")[1].split(".")[0]) for p in periodic] == [4, 6], periodic

    if not validates:
        return
    logged = json.loads((record / "val_fit.json").read_text())
    assert logged["global_step"] == MAX_STEPS, "the fit's last validation was not of its final weights"
    run(
        cli,
        [
            "validate",
            *common,
            "--trainer.callbacks+=run_recorder.RunRecorder",
            f"--trainer.callbacks.out={record}",
            f"--ckpt_path={ckpt_dir / 'last.ckpt'}",
        ],
    )
    again = json.loads((record / "val_validate.json").read_text())
    metrics = sorted(k for k in logged if k.startswith("val/"))
    assert metrics and metrics == sorted(k for k in again if k.startswith("val/"))
    for key in metrics:
        assert again[key] == pytest.approx(logged[key], rel=1e-5, abs=1e-6), key
