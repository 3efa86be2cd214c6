"""SlurmRequeue without Slurm: every `fit` command adds it when GANFORGE_REQUEUE_FILE is set.

The real preemption (a two-node job, `scontrol requeue`, resume) is tests/slurm/; here one process
signals itself with SIGUSR1 mid-fit, as Slurm does before the time limit.
"""

import os
import signal

import pytorch_lightning as pl
import torch

from ganforge.checkpoint import load_checkpoint
from ganforge.examples.ring import RingDataModule, RingGAN
from ganforge.lightning_cli import run_lightning_cli
from ganforge.slurm_requeue import REQUEST_ENV, SlurmRequeue, prune_older_hpc_checkpoints


class SignalledRing(RingGAN):
    """The ring GAN that sends itself SIGUSR1 during batch 3 and records its trainer's requeue callbacks."""

    requeue_callbacks = 0

    def on_fit_start(self) -> None:
        super().on_fit_start()
        SignalledRing.requeue_callbacks = sum(isinstance(c, SlurmRequeue) for c in self.trainer.callbacks)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        if self.batches_seen == 3:
            os.kill(os.getpid(), signal.SIGUSR1)
        super().training_step(batch, batch_idx)


def fit(root, monkeypatch, request_file, *extra: str) -> int:  # noqa: ANN001
    if request_file is None:
        monkeypatch.delenv(REQUEST_ENV, raising=False)
    else:
        monkeypatch.setenv(REQUEST_ENV, str(request_file))
    args = [
        "fit",
        "--trainer.accelerator=cpu",
        "--trainer.max_steps=40",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={root}",
        "--model.hidden=16",
        "--data.batch_size=32",
        "--data.batches_per_epoch=20",
        *extra,
    ]
    pl.seed_everything(0, verbose=False)
    return run_lightning_cli("ganforge", SignalledRing, RingDataModule, args, "ring")


def test_sigusr1_saves_an_hpc_checkpoint_at_the_batch_end_and_requests_a_requeue(tmp_path, monkeypatch):
    request = tmp_path / "requeue-requested"
    previous = signal.getsignal(signal.SIGUSR1)
    assert fit(tmp_path, monkeypatch, request) == 0
    assert SignalledRing.requeue_callbacks == 1
    assert signal.getsignal(signal.SIGUSR1) == previous  # the handler is put back after fit
    hpc = tmp_path / "hpc_ckpt_1.ckpt"
    assert request.read_text() == f"{hpc}\n"
    ckpt = load_checkpoint(hpc, family="ring")
    # Saved at the end of the signalled batch (index 3, one generator step a batch), then training
    # stopped there instead of running to max_steps. The hpc file stands for that state: no last.ckpt
    # is written in the preemption's grace time (none was due before it), `--ckpt_path auto` takes hpc.
    assert ckpt["global_step"] == 4 and ckpt["ganforge"]["batches_seen"] == 4
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()


def test_one_callback_when_the_config_names_it_too(tmp_path, monkeypatch):
    args = ("--trainer.callbacks+=ganforge.slurm_requeue.SlurmRequeue",)
    assert fit(tmp_path, monkeypatch, tmp_path / "requeue-requested", *args) == 0
    assert SignalledRing.requeue_callbacks == 1


def test_without_the_variable_the_callback_stays_out(tmp_path, monkeypatch):
    # With SIGUSR1 ignored, only a SlurmRequeue handler could act on it: none does, fit runs to the end.
    previous = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        assert fit(tmp_path, monkeypatch, None) == 0
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert SignalledRing.requeue_callbacks == 0
    assert not list(tmp_path.glob("hpc_ckpt_*.ckpt"))
    assert load_checkpoint(tmp_path / "checkpoints" / "last.ckpt", family="ring")["global_step"] == 40


def test_older_hpc_checkpoints_are_pruned_after_a_new_one(tmp_path):
    for n in (1, 2, 3):
        (tmp_path / f"hpc_ckpt_{n}.ckpt").write_bytes(b"x")
    (tmp_path / "last.ckpt").write_bytes(b"x")
    removed = prune_older_hpc_checkpoints(tmp_path / "hpc_ckpt_3.ckpt")
    assert sorted(p.name for p in removed) == ["hpc_ckpt_1.ckpt", "hpc_ckpt_2.ckpt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hpc_ckpt_3.ckpt", "last.ckpt"]


def test_ddp_ranks_compare_both_stop_flags_in_one_reduce_every_few_batches(monkeypatch):
    from types import SimpleNamespace

    from ganforge.fit_end import MAX_STOP_DELAY, FitEnd, agreed_request

    monkeypatch.setenv(REQUEST_ENV, "unused")
    reduces = []

    def reduce(flags, reduce_op):  # this rank's flags plus another rank's, which has a SIGUSR1
        reduces.append(flags.tolist())
        return flags + torch.tensor([0.0, 1.0])

    fit_end, requeue = FitEnd(), SlurmRequeue()
    fit_end.received = signal.SIGTERM
    loop = SimpleNamespace(epoch_loop=SimpleNamespace(total_batch_idx=0))

    class DDPTrainer(SimpleNamespace):  # hashable and weak-referenceable, as a Trainer is
        __hash__ = object.__hash__

    trainer = DDPTrainer(
        world_size=2, log_every_n_steps=50, fit_loop=loop, callbacks=[fit_end, requeue],
        strategy=SimpleNamespace(root_device=torch.device("cpu"), reduce=reduce),
    )  # fmt: skip
    for batch in range(MAX_STOP_DELAY - 1):  # no comparison, no collective before the check batch
        loop.epoch_loop.total_batch_idx = batch
        assert not agreed_request(trainer, fit_end) and not agreed_request(trainer, requeue)
    loop.epoch_loop.total_batch_idx = MAX_STOP_DELAY - 1
    assert agreed_request(trainer, fit_end) and agreed_request(trainer, requeue)
    assert reduces == [[1.0, 0.0]]  # one all-reduce for both callbacks
