"""Per-rank seeding (`ganforge.rng`) and the RNG states a resumed fit restores, in one process.

The 2-process behaviour (ranks draw apart, each resumes its own states) is tested in test_ddp.py.
"""

import random

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from ganforge.checkpoint import HEADER_KEY
from ganforge.examples.ring import RingBatches, RingGAN
from ganforge.rng import all_ranks, seed_rank


def draws() -> tuple[torch.Tensor, float, float]:
    return torch.rand(3), float(np.random.rand()), random.random()


def test_seed_rank_gives_each_rank_its_own_reproducible_streams():
    assert seed_rank(0, seed=7) == 7 and seed_rank(1, seed=7) == 8
    seed_rank(0, seed=7)
    rank0 = draws()
    seed_rank(1, seed=7)
    rank1 = draws()
    seed_rank(0, seed=7)
    again = draws()
    assert torch.equal(rank0[0], again[0]) and rank0[1:] == again[1:]
    assert not torch.equal(rank0[0], rank1[0]) and rank0[1] != rank1[1] and rank0[2] != rank1[2]
    assert seed_rank(3, seed=2**32 - 1) == 2  # wraps into numpy's 32-bit seed range


def test_all_ranks_without_a_process_group_is_this_process_alone():
    assert all_ranks({"a": 1}) == [{"a": 1}]


class RecordingRing(RingGAN):
    """RingGAN that records the latents its training steps draw."""

    def noise(self, *shape: int, rng: torch.Generator | None = None) -> torch.Tensor:
        z = super().noise(*shape, rng=rng)
        self.__dict__.setdefault("drawn", []).append(z.clone())
        return z


def fit(batches: int, root, ckpt_path=None) -> RecordingRing:
    """Train `batches` generator steps (one batch each); a fresh fit seeds 0 and saves root/run.ckpt."""
    if ckpt_path is None:
        pl.seed_everything(0, verbose=False)
    model = RecordingRing(hidden=16)
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=batches, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=root,
    )  # fmt: skip
    trainer.fit(model, DataLoader(RingBatches(8, 8, seed=0), batch_size=None), ckpt_path=ckpt_path)
    if ckpt_path is None:
        trainer.save_checkpoint(root / "run.ckpt")
    return model


@pytest.mark.filterwarnings("ignore:You.re resuming from a checkpoint that ended before the epoch ended")
@pytest.mark.parametrize("layout", ["per_rank", "before_per_rank", "two_ranks"])
def test_resume_restores_this_process_states_or_reseeds_for_another_world_size(tmp_path, layout):
    first = fit(2, tmp_path)
    ckpt = torch.load(tmp_path / "run.ckpt", weights_only=True)
    header = ckpt[HEADER_KEY]
    assert len(header["rng_states"]) == 1 and len(header["generators"]) == 1  # one per rank
    if layout == "before_per_rank":  # the single dicts of checkpoints written before per-rank states
        header["rng_states"], header["generators"] = header["rng_states"][0], header["generators"][0]
    if layout == "two_ranks":
        header["rng_states"], header["generators"] = header["rng_states"] * 2, header["generators"] * 2
    torch.save(ckpt, tmp_path / "edited.ckpt")
    torch.manual_seed(123)  # a resumed run must not depend on the new process's own RNG position
    if layout == "two_ranks":
        with pytest.warns(UserWarning, match="RNG states of 2 process"):
            resumed = fit(4, tmp_path, tmp_path / "edited.ckpt")
        seed_rank(0, seed=0)  # the fallback: seed + rank, with seed_everything's seed 0
        assert torch.equal(resumed.drawn[0], torch.randn(8, 16))
        return
    resumed = fit(4, tmp_path, tmp_path / "edited.ckpt")
    # The resumed latents continue the saved stream: a straight run to step 4 draws the same.
    straight = fit(4, tmp_path / "straight")
    assert len(resumed.drawn) == len(straight.drawn) - len(first.drawn) > 0
    for got, want in zip(resumed.drawn, straight.drawn[len(first.drawn) :], strict=True):
        assert torch.equal(got, want)
