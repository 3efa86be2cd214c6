"""The training step keeps no host-device syncs on non-log steps: ring, vidgan, t2i layout and image stages.

`SyncRecorder` is a TorchDispatchMode that records the aten ops that make the host wait for a GPU:
reading a value (`_local_scalar_dense`, behind `item()`, `bool()`, `int()`; `is_nonzero`), shapes
that depend on values (`nonzero`, `masked_select`, indexing with a boolean mask) and copies to the
CPU. On CPU nothing waits, but the same ops run, so a CPU fit finds the syncs a GPU fit would have.
`RecordNonLogSteps` installs it around every training batch that is not a log step; with a GPU,
those batches also run under `torch.cuda.set_sync_debug_mode("error")`.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader, TensorDataset

from ganforge.examples.ring import RingBatches, RingGAN
from ganforge.fit_end import FitEnd
from t2i.data.coco import collate_layouts
from t2i.image_stage import ImageGAN
from t2i.layout_stage import LayoutGAN
from vidgan.module import VideoGAN

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS / "t2i"), str(TESTS / "vidgan")]  # the families' tiny data helpers

from image_testing import CLASSES, TEXT, TINY_IMAGE, single_object_items  # noqa: E402
from vidgan_clips import moving_square_clips  # noqa: E402

aten = torch.ops.aten
VALUE_READS = {aten._local_scalar_dense.default, aten.is_nonzero.default, aten.nonzero.default}
VALUE_READS |= {aten.masked_select.default, aten.nonzero_static.default}
COPIES = {aten._to_copy.default, aten.copy_.default}
LOG_EVERY = 1000  # no batch of these short fits is a log step
BATCHES = 4


class SyncRecorder(TorchDispatchMode):
    """Records (op, stack summary) for every op that would make the host wait for a GPU."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[tuple[str, str]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if self._forces_sync(func, args, kwargs):
            frames = [f for f in traceback.extract_stack()[:-1] if "/site-packages/" not in f.filename]
            where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames[-4:]))
            self.syncs.append((str(func), where))
        return func(*args, **kwargs)

    @staticmethod
    def _forces_sync(func: Any, args: tuple, kwargs: dict) -> bool:
        if func in VALUE_READS:
            return True
        if func is aten.index.Tensor:  # x[mask]: the result's shape is the mask's count
            return any(i is not None and i.dtype == torch.bool for i in args[1])
        if func is aten._to_copy.default:  # .cpu(), .to("cpu"): a device-to-host copy on a GPU
            return "device" in kwargs and torch.device(kwargs["device"]).type == "cpu"
        return False


@contextmanager
def gpu_sync_errors() -> Iterator[None]:
    """With a GPU, any synchronising CUDA call raises; without one, nothing."""
    if not torch.cuda.is_available():
        yield
        return
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)


class RecordNonLogSteps(pl.Callback):
    """Runs every non-log training batch (its whole step: both updates) under a `SyncRecorder` and,
    with a GPU, `gpu_sync_errors`."""

    def __init__(self) -> None:
        self.recorder = SyncRecorder()
        self.recorded_batches = 0
        self._window: ExitStack | None = None

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int
    ) -> None:
        if (idx + 1) % trainer.log_every_n_steps != 0:
            self._window = ExitStack()
            self._window.enter_context(self.recorder)
            self._window.enter_context(gpu_sync_errors())

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        if self._window is not None:
            self._window.close()
            self._window, self.recorded_batches = None, self.recorded_batches + 1


def fit_without_syncs(model: pl.LightningModule, loader: DataLoader) -> None:
    """Fit `model` for `BATCHES` non-log batches and assert none of them synced."""
    recorder = RecordNonLogSteps()
    trainer = pl.Trainer(
        accelerator="auto", devices=1, max_steps=BATCHES, max_epochs=1, log_every_n_steps=LOG_EVERY,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, callbacks=[recorder, FitEnd()],
    )  # fmt: skip
    trainer.fit(model, loader)
    assert recorder.recorded_batches >= BATCHES
    syncs = "\n".join(f"  {op}  at {where}" for op, where in recorder.recorder.syncs)
    assert not recorder.recorder.syncs, f"host syncs in non-log training steps:\n{syncs}"


def test_the_recorder_catches_a_deliberate_item() -> None:
    x = torch.randn(4)
    with SyncRecorder() as recorder:
        float(x.sum().item())
        bool(x.any())
        x[x > 0]
        x.to("cpu", copy=True)
        x + 1  # no sync
    ops = [op for op, _ in recorder.syncs]
    assert ops.count("aten._local_scalar_dense.default") == 2
    assert "aten.index.Tensor" in ops and "aten._to_copy.default" in ops and len(ops) == 4
    assert "test_host_syncs.py" in recorder.syncs[0][1]


def test_ring_steps_do_not_sync() -> None:
    torch.manual_seed(0)
    model = RingGAN(
        hidden=16, gan=RingGAN.gan_options(d_steps_per_g_step=2, grad_clip_norm=1.0, r1_weight=1.0)
    )
    fit_without_syncs(model, DataLoader(RingBatches(2 * BATCHES, 32, seed=0), batch_size=None))


def test_vidgan_steps_do_not_sync() -> None:
    torch.manual_seed(0)
    model = VideoGAN(
        context_frames=2, future_frames=3, channels=1, resolution=16, g_widths=[8, 8], latent_dim=4,
        d_widths=[8, 8, 8], spatial_frames=3,
    )  # fmt: skip
    clips = moving_square_clips(2 * BATCHES * 2, 5, size=16, seed=1)
    fit_without_syncs(model, DataLoader(TensorDataset(clips[:, :2], clips[:, 2:]), batch_size=2))


def layout_loader(objects: int) -> DataLoader:
    items = single_object_items(2 * BATCHES * 2, 32, seed=0)
    return DataLoader(items, batch_size=2, collate_fn=lambda b: collate_layouts(b, max_objects=objects))


@pytest.mark.parametrize("penalties", [{}, {"r1_weight": 1.0, "gp_weight": 1.0}])
def test_t2i_layout_steps_do_not_sync(penalties: dict[str, float]) -> None:
    torch.manual_seed(0)
    model = LayoutGAN(
        CLASSES, max_objects=3, box_hidden=32, box_layers=1, box_heads=2, shape_hidden=32, mask_size=8,
        layout_size=16, **TEXT, gan=LayoutGAN.gan_options(**penalties),
    )  # fmt: skip
    fit_without_syncs(model, layout_loader(3))


@pytest.mark.parametrize("options", [{}, {"phrase_context": True}, {"phrase_grounding": True}])
def test_t2i_image_steps_do_not_sync(options: dict[str, bool]) -> None:
    torch.manual_seed(0)
    model = ImageGAN(CLASSES, **TINY_IMAGE, text_width=64, text_layers=1, **options)
    fit_without_syncs(model, layout_loader(2))
