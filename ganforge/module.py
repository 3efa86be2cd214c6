"""GANModule: the shared Lightning training core for every ganforge GAN.

The step schedule follows mmagic's `BaseGAN.train_step`: `training_step` only schedules, and
`_d_step` / `_g_step` each do one (possibly accumulated) update, each inside `toggled_optimizer`
so the other network's parameters get no gradients. Subclasses give the three model-specific
pieces:

    discriminator_loss(batch) -> (loss, logs)    fakes detached, adversarial + penalties
    generator_loss(batch)     -> (loss, logs)    adversarial (+ reconstruction, ...)
    sample(batch)             -> media            with the EMA generator, for logging

Schedule, with k = accumulate_grad_batches and n = d_steps_per_g_step: every batch feeds D;
D steps its optimiser every k batches; the last k batches of each n*k-batch cycle also feed G,
which then steps and updates its EMA.

Step unit: D's optimiser steps bypass Lightning's step counter (`_step_uncounted`), so Lightning's
`global_step` counts generator updates, as GAN papers do, and equals `g_step`. Everything keyed to it
is in generator steps: `trainer.max_steps`, checkpoint intervals, `lr_decay`, `ema_start_step`, and
(scaled in `on_train_start`) an integer `val_check_interval`. See docs/training_steps.md.

DDP: gradients are all-reduced once per update, on its last micro-batch (the others run under the
strategy's `block_backward_sync`); with `ganforge.gan_ddp` only the network being stepped is
all-reduced. Each rank seeds its noise with seed + rank (`on_fit_start`), and checkpoints hold
every rank's RNG states, which a resume on as many ranks restores rank by rank (`on_train_start`).

Host syncs: none per step besides log steps. The non-finite guard keeps its flags and counters on
the device and skips an update with a non-finite loss inside the fused Adam kernel (`found_inf`,
as AMP's GradScaler does): weights, moments and Adam's step count stay as they were. With
`accumulate_grad_batches` k > 1 one non-finite micro-batch skips its whole update (all k), and
`nonfinite_steps` counts skipped updates. The counters are read on the host only on log steps
(every `trainer.log_every_n_steps` batches) and when training ends, so `max_consecutive_nonfinite`
skipped updates in a row raise `NonFiniteLossError` at the first such check after the run reached
it, up to log_every_n_steps - 1 batches later than the update that completed the run.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from types import FrameType
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.strategies import ParallelStrategy
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor, nn

from ganforge.acceleration import compile_calls, use_channels_last
from ganforge.checkpoint import read_header, stamp_header
from ganforge.ema import EMA
from ganforge.errors import NonFiniteLossError, UserError
from ganforge.losses import (
    gradient_penalty,
    interpolate,
    loss_pair,
    masked_d_loss,
    r1_penalty,
    sample_mean,
)
from ganforge.options import GANOptions
from ganforge.rng import all_ranks, restore_rng_states, rng_states, seed_rank


def standard_normal(
    shape: Sequence[int], device: torch.device | str, rng: torch.Generator | None = None
) -> Tensor:
    """Noise of `shape` from N(0, 1) on `device`: from `device`'s global RNG, or drawn from `rng` on
    the generator's own device and then moved, so a CPU `rng` gives the same values on any device."""
    if rng is None:
        return torch.randn(*shape, device=device)
    return torch.randn(*shape, generator=rng, device=rng.device).to(device)


def check_data_settings(settings: Mapping[str, Any], datamodule: Any) -> None:
    """Raise one UserError naming each of a model's data `settings` ({attribute: value}) that
    `datamodule` holds with another value. Settings the data module has no attribute for are not
    checked, so any data module may be given, or None (no data module: nothing to check)."""
    absent = object()
    held = {name: getattr(datamodule, name, absent) for name in settings}
    differ = [
        f"model {name}={value!r} but data {name}={held[name]!r}"
        for name, value in settings.items()
        if held[name] is not absent and held[name] != value
    ]
    if differ:
        raise UserError(f"{'; '.join(differ)}: set both to the same value")


class GANModule(pl.LightningModule):
    """Lightning core with manual optimisation, TTUR Adam, EMA of G and a non-finite guard.

    Args:
        generator: the network G; its EMA copy lives in `self.ema.model`.
        discriminator: the network D (may hold several discriminators).
        gan: the core options (`ganforge.options.GANOptions`: loss, TTUR Adam, D:G schedule,
            penalties, EMA, ...), kept as `self.gan` and read into the attributes the steps use
            (`self.g_lr`, `self.d_steps_per_g_step`, ...). A mapping (the plain dict a checkpoint
            stores, e.g. through `load_from_checkpoint`, or a YAML block) is read over the family's
            defaults, `self.gan_options(**gan)`.

    The class attribute `family` is the name written in checkpoints ("ring", "vidgan", "t2i-image", ...).
    Subclasses take `gan: GANOptions = <their defaults>` and call `save_hyperparameters()`, which
    stores `gan` as a plain dict.
    """

    family = "ganforge"

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        gan: GANOptions | Mapping[str, Any],
    ) -> None:
        super().__init__()
        gan = gan if isinstance(gan, GANOptions) else self.gan_options(**gan)
        self.gan = gan
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.ema = EMA(generator, decay=gan.ema_decay, start_step=gan.ema_start_step)
        self.d_adversarial, self.g_adversarial = loss_pair(gan.loss)
        self.loss_name = gan.loss
        self.g_lr, self.d_lr = gan.g_lr, gan.d_lr
        self.g_betas, self.d_betas = gan.g_betas, gan.d_betas
        self.d_steps_per_g_step = gan.d_steps_per_g_step
        self.accumulate_grad_batches = gan.accumulate_grad_batches
        self.grad_clip_norm = gan.grad_clip_norm
        self.gp_weight, self.r1_weight = gan.gp_weight, gan.r1_weight
        self.max_consecutive_nonfinite = gan.max_consecutive_nonfinite
        self.lr_decay = gan.lr_decay
        # Not `self.compile`: that would hide nn.Module.compile.
        self.channels_last, self.compile_networks = gan.channels_last, gan.compile
        # Progress counters; saved in the checkpoint header so a resume continues the schedule.
        self.batches_seen = 0
        self.g_step = 0
        self._start_nonfinite_guard(skipped_before=0)
        self._last_log_time: tuple[float, int] | None = None
        self._resume_rng: dict[str, Any] | None = None  # set by on_load_checkpoint, used by on_train_start
        self._penalties_ran = False  # set by d_penalties, checked after each discriminator_loss

    # ------------------------------------------------------------------ options
    @classmethod
    def gan_options(cls, **changes: Any) -> GANOptions:
        """The family's default `GANOptions` (its `gan` argument's default) with `changes` applied."""
        default = inspect.signature(cls).parameters["gan"].default
        return replace(GANOptions() if default is inspect.Parameter.empty else default, **changes)

    def save_hyperparameters(
        self,
        *args: Any,
        ignore: Sequence[str] | str | None = None,
        frame: FrameType | None = None,
        logger: bool = True,
    ) -> None:
        """Lightning's `save_hyperparameters` (the caller's init arguments), `gan` as `self.gan`'s plain dict.

        The resolved options are stored whether `gan` came as GANOptions (Python), a dict (LightningCLI)
        or its default, so a checkpoint rebuilds the same module and `weights_only=True` loads it.
        """
        frame = frame or inspect.currentframe().f_back  # the subclass's __init__, whose arguments are saved
        super().save_hyperparameters(*args, ignore=ignore, frame=frame, logger=logger)
        for hparams in (self._hparams, self._hparams_initial):  # hparams_initial: what loggers record
            if "gan" in hparams:
                hparams["gan"] = self.gan.as_dict()

    # ------------------------------------------------------------------ subclass interface
    def discriminator_loss(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """D loss on one batch (fakes detached) and its logs; see `adversarial_d_loss`."""
        raise NotImplementedError

    def generator_loss(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """G loss on one batch and its logs."""
        raise NotImplementedError

    def sample(self, batch: Any) -> Any:
        """Media for logging, made with the EMA generator `self.ema.model`."""
        raise NotImplementedError

    def data_settings(self) -> dict[str, Any]:
        """What this model assumes of its data, by the data module's attribute name (e.g. {"image_size":
        64}); `setup` checks them against the trainer's data module (a subclass's own `setup`
        calls super). GANModule declares none."""
        return {}

    def setup(self, stage: str) -> None:
        check_data_settings(self.data_settings(), self.trainer.datamodule)

    def noise(self, *shape: int, rng: torch.Generator | None = None) -> Tensor:
        """Latents of `shape` (e.g. (B, latent_dim)) from N(0, 1) on this module's device: from the
        global RNG (seeded per rank in `on_fit_start`), or from `rng` (see `standard_normal`)."""
        return standard_normal(shape, self.device, rng)

    # ------------------------------------------------------------------ helpers for subclasses
    def adversarial_d_loss(
        self,
        critic: Callable[[Tensor], Tensor],
        real: Tensor,
        fake: Tensor,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """D loss of `critic` on real and (detached) fake inputs of shape (B, ...), with `d_penalties`.

        `mask` (B,) bool, when given, keeps only its True rows in the loss, the logs and the
        penalties (e.g. the real objects among padded slots), as selecting them would, without the
        selection's host sync (`ganforge.losses.masked_d_loss`); the critic then gives logits (B,).
        Returns the loss and `d_real`/`d_fake` logit means (plus the penalties' logs).
        """
        fake = fake.detach()
        if self.r1_weight > 0:  # R1 differentiates these same real logits: no second forward
            real = real.detach().requires_grad_(True)
        real_logits, fake_logits = critic(real), critic(fake)
        if mask is None:
            loss = self.d_adversarial(real_logits, fake_logits)
        else:
            loss = masked_d_loss(self.d_adversarial, real_logits, mask, fake_logits, mask)
        logs = {
            "d_real": sample_mean(real_logits.detach(), mask),
            "d_fake": sample_mean(fake_logits.detach(), mask),
        }
        penalty, penalty_logs = self.d_penalties(critic, real, fake, real_logits, mask)
        return loss + penalty, logs | penalty_logs

    def d_penalties(
        self,
        critic: Callable[[Tensor], Tensor],
        real: Tensor,
        fake: Tensor,
        real_logits: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The weighted R1 (on `real`) and WGAN gradient penalty (at random interpolates) of `critic`.

        Every D loss passes here, directly or through `adversarial_d_loss`: a stage whose D loss is
        written by hand (t2i's image stage shares features between terms) calls it per critic. A
        positive `gp_weight` or `r1_weight` whose penalty never ran in a D step is an error
        (`_d_step`), never a silent no-op. `critic` maps inputs (B, ...) to logits (B, ...).
        `real_logits`, when given, are `critic(real)` computed on a `real` that requires grad: R1 then
        reuses them instead of running the critic on the real inputs again. `mask` (B,) bool, when
        given, averages both penalties over its True rows only (`ganforge.losses.r1_penalty`).
        """
        self._penalties_ran = True
        loss, logs = torch.zeros((), device=real.device), {}
        if self.r1_weight > 0:
            if real_logits is None or not real.requires_grad:
                real = real.detach().requires_grad_(True)
                real_logits = critic(real)
            r1 = r1_penalty(real_logits, real, mask)
            loss = loss + 0.5 * self.r1_weight * r1
            logs["r1"] = r1.detach()
        if self.gp_weight > 0:
            alpha = torch.rand(real.shape[0], device=real.device)
            x_hat = interpolate(real.detach(), fake.detach(), alpha)
            gp = gradient_penalty(critic(x_hat), x_hat, mask)
            loss = loss + self.gp_weight * gp
            logs["gp"] = gp.detach()
        return loss, logs

    # ------------------------------------------------------------------ Lightning hooks
    def configure_model(self) -> None:
        """Applies the opt-in speed paths before training: channels_last on G, D and the EMA copy; compile."""
        if self.channels_last:
            use_channels_last(self.generator, self.discriminator, self.ema)
        if self.compile_networks:
            compile_calls(self.generator, self.discriminator, device=self.trainer.strategy.root_device)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """Adam for D and G, fused: its kernel skips a non-finite update on the device (`_step_or_skip`)."""
        d_opt = torch.optim.Adam(
            self.discriminator.parameters(), lr=self.d_lr, betas=self.d_betas, fused=True
        )
        g_opt = torch.optim.Adam(self.generator.parameters(), lr=self.g_lr, betas=self.g_betas, fused=True)
        return [d_opt, g_opt]

    def training_step(self, batch: Any, batch_idx: int) -> None:
        d_opt, g_opt = self.optimizers()
        k, n = self.accumulate_grad_batches, self.d_steps_per_g_step
        micro = self.batches_seen % k
        updates = micro == k - 1
        log_now = self._is_log_step(self.batches_seen + 1)
        logs = self._d_step(batch, d_opt, update=updates, log_now=log_now)
        if (self.batches_seen // k) % n == n - 1:
            logs |= self._g_step(batch, g_opt, update=updates, log_now=log_now)
        if log_now:
            self._check_nonfinite()
        self.batches_seen += 1
        if log_now:
            self._log_train(logs, batch)

    def _d_step(self, batch: Any, opt: Any, update: bool, log_now: bool) -> dict[str, Tensor]:
        with self.toggled_optimizer(opt):
            self._penalties_ran = False
            loss, logs = self.discriminator_loss(batch)
            if (self.gp_weight > 0 or self.r1_weight > 0) and not self._penalties_ran:
                raise UserError(
                    f"{type(self).__name__}: gp_weight={self.gp_weight}, r1_weight={self.r1_weight}, but its "
                    "discriminator_loss never calls the core's penalty path (adversarial_d_loss, d_penalties)"
                )
            self._backward_guarded(loss, "d_loss", sync=update)
            if update:
                self._clip(self.discriminator, logs, "d_grad_norm", log_now)
                with self._step_or_skip(opt, "d_loss") as step:
                    if step:
                        self._step_uncounted(opt)
                opt.zero_grad(set_to_none=True)
        return {"d_loss": loss.detach(), **logs}

    def _g_step(self, batch: Any, opt: Any, update: bool, log_now: bool) -> dict[str, Tensor]:
        with self.toggled_optimizer(opt):
            loss, logs = self.generator_loss(batch)
            self._backward_guarded(loss, "g_loss", sync=update)
            if update:
                self._clip(self.generator, logs, "g_grad_norm", log_now)
                with self._step_or_skip(opt, "g_loss") as step:
                    if step:
                        opt.step()
                opt.zero_grad(set_to_none=True)
                self.g_step += 1
                self.ema.update(self.generator, self.g_step)
                self._decay_learning_rates()
        return {"g_loss": loss.detach(), **logs}

    def _step_uncounted(self, opt: Any) -> None:
        """Step a LightningOptimizer through the strategy (precision plugin included) without counting it.

        `LightningOptimizer.step` is `strategy.optimizer_step` between two progress-counter updates;
        leaving the counter out for D keeps `global_step` in generator steps (module docstring).
        """
        self.trainer.strategy.optimizer_step(opt.optimizer, closure=lambda: None)

    @property
    def batches_per_g_step(self) -> int:
        """Training batches per generator update: `d_steps_per_g_step * accumulate_grad_batches`."""
        return self.d_steps_per_g_step * self.accumulate_grad_batches

    # ------------------------------------------------------------------ non-finite guard
    @property
    def nonfinite_steps(self) -> int:
        """Updates skipped for a non-finite loss, resumed runs included (host read of a device counter)."""
        counted = 0 if self._nonfinite_count is None else int(self._nonfinite_count)
        return self._nonfinite_base + counted

    def _start_nonfinite_guard(self, skipped_before: int) -> None:
        """Fresh guard state: no run of non-finite losses, `skipped_before` updates skipped by the
        run this one resumes (0 for a new run); the device counters start with the fit."""
        self._nonfinite_base = skipped_before
        self._nonfinite_count: Tensor | None = None  # () int64, on the losses' device once training
        self._update_bad: dict[str, Tensor] = {}  # () bool per loss: a non-finite micro-batch in this update
        self._bad_run: dict[str, Tensor] = {}  # () int64 per loss: skipped updates in a row, now
        self._worst_run: dict[str, Tensor] = {}  # () int64 per loss: longest run since the last check
        self._last_bad: dict[str, Tensor] = {}  # () float32 per loss: the last non-finite value

    def _backward_guarded(self, loss: Tensor, name: str, sync: bool) -> None:
        """Backward `loss / k` and flag it on the device when it is not finite; no host read.

        Under DDP, gradients are all-reduced only when `sync` (the last micro-batch of an
        accumulation): the others run in the strategy's `block_backward_sync` (DDP's `no_sync`), so
        their gradients add up locally and go out once. A non-finite loss still runs its backward,
        so every rank makes the same all-reduces; the update it belongs to is skipped on every rank
        (`_step_or_skip`).
        """
        value = loss.detach().float().reshape(())
        bad = ~torch.isfinite(value)
        self._update_bad[name] = self._update_bad[name] | bad if name in self._update_bad else bad
        self._last_bad[name] = torch.where(bad, value, self._last_bad.get(name, value))
        distributed = self.trainer.world_size > 1 and isinstance(self.trainer.strategy, ParallelStrategy)
        with self.trainer.strategy.block_backward_sync() if distributed and not sync else nullcontext():
            self.manual_backward(loss / self.accumulate_grad_batches)

    @contextmanager
    def _step_or_skip(self, opt: Any, name: str) -> Iterator[bool]:
        """Context for the optimiser step that ends an update of `name` ("d_loss"/"g_loss"): skipped
        when any micro-batch of the update had a non-finite loss on any rank, and counted.

        The flag is all-reduced (max) across ranks on the device. A fused torch optimiser (the core's
        Adam) takes it as `found_inf` and leaves weights, moments and its step count untouched; for
        another optimiser, or under a GradScaler that sets `found_inf` itself, the flag is read on
        the host (one sync per update). Yields whether the caller should call the step.
        """
        skip = self._update_bad.pop(name).to(torch.float32)  # () 1.0: skip this update
        if self.trainer.world_size > 1:
            dist.all_reduce(skip, op=dist.ReduceOp.MAX)
        self._count_nonfinite(name, skip)
        inner = opt.optimizer if hasattr(opt, "optimizer") else opt
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if getattr(inner, "_step_supports_amp_scaling", False) and scaler is None:
            inner.grad_scale, inner.found_inf = None, skip
            try:
                yield True
            finally:
                del inner.grad_scale, inner.found_inf
        else:
            yield not bool(skip)

    def _count_nonfinite(self, name: str, skip: Tensor) -> None:
        """Device-side bookkeeping of one update of `name` whose skip flag is `skip` (() float32, 0 or 1)."""
        skipped = skip.to(torch.int64)
        if self._nonfinite_count is None:
            self._nonfinite_count = torch.zeros((), dtype=torch.int64, device=skip.device)
        self._nonfinite_count += skipped
        run = (self._bad_run.get(name, torch.zeros_like(skipped)) + 1) * skipped  # 0 after a good update
        self._bad_run[name] = run
        self._worst_run[name] = torch.maximum(self._worst_run.get(name, run), run)

    def _check_nonfinite(self) -> None:
        """Raise `NonFiniteLossError` when a loss was non-finite `max_consecutive_nonfinite` updates in a
        row since the last check. A host read: called on log steps and when training ends.

        The counters come from all-reduced flags, so every rank reads the same and raises alike.
        """
        for name, worst in sorted(self._worst_run.items()):
            count = int(worst)
            self._worst_run[name] = self._bad_run[name].clone()
            if count >= self.max_consecutive_nonfinite:
                raise NonFiniteLossError(
                    f"{count} non-finite losses in a row (last: train/{name}={self._last_bad[name].item()}), "
                    f"found at global step {self.global_step} (checked every log_every_n_steps batches); "
                    "their updates were skipped, so the weights and the last saved checkpoint are finite. "
                    "Lower the learning rates, enable grad_clip_norm, or check the data for NaN/Inf"
                )

    def _clip(self, net: nn.Module, logs: dict[str, Tensor], key: str, log_now: bool) -> None:
        """Clip `net`'s gradients to `grad_clip_norm` when set; on log steps put the pre-clip norm in logs.

        Without clipping the norm is only computed on log steps: a per-step norm is a full extra
        pass over every gradient.
        """
        if self.grad_clip_norm is None and not log_now:
            return
        params = [p for p in net.parameters() if p.grad is not None]
        if not params:
            return
        max_norm = self.grad_clip_norm if self.grad_clip_norm is not None else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
        if log_now:
            logs[key] = norm.detach()

    def _decay_learning_rates(self) -> None:
        """lr = initial_lr * (1 - g_step / max_steps) for every param group of both optimisers.

        Each group decays from its own first learning rate (LayoutGAN's box, shape and text groups
        differ), kept as `group["initial_lr"]`, torch's scheduler key: the optimiser state dict
        saves it, so a resumed run continues the same schedule from the global step.
        """
        if self.lr_decay == "none" or self.trainer.max_steps is None or self.trainer.max_steps <= 0:
            return
        scale = max(0.0, 1.0 - self.g_step / self.trainer.max_steps)
        for opt in self.optimizers():
            for group in opt.param_groups:
                group["lr"] = group.setdefault("initial_lr", group["lr"]) * scale

    def _is_log_step(self, batches: int) -> bool:
        every = self.trainer.log_every_n_steps if self._trainer is not None else 50
        return batches % max(every, 1) == 0

    def _log_train(self, logs: dict[str, Tensor], batch: Any) -> None:
        d_opt, g_opt = self.optimizers()
        scalars: dict[str, Any] = {f"train/{k}": v for k, v in logs.items()}
        scalars["train/lr_d"] = d_opt.param_groups[0]["lr"]
        scalars["train/lr_g"] = g_opt.param_groups[0]["lr"]
        scalars["train/ema_decay"] = self.ema.decay_at(self.g_step)
        scalars["train/g_step"] = float(self.g_step)
        scalars["train/nonfinite_steps"] = float(self.nonfinite_steps)
        now = (time.perf_counter(), self.batches_seen)
        if self._last_log_time is not None:
            seconds, batches = now[0] - self._last_log_time[0], now[1] - self._last_log_time[1]
            scalars["train/samples_per_sec"] = batches * self.batch_size(batch) / max(seconds, 1e-9)
        self._last_log_time = now
        self.log_dict(scalars, on_step=True, on_epoch=False, prog_bar=False, batch_size=1)

    def batch_size(self, batch: Any) -> int:
        """Samples in `batch`; override for batch structures without a leading tensor."""
        first = batch[0] if isinstance(batch, (list, tuple)) else batch
        if isinstance(first, dict):
            first = next(iter(first.values()))
        return int(first.shape[0])

    # ------------------------------------------------------------------ checkpoint state
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A collective under DDP: Lightning builds the checkpoint on every rank (rank 0 writes it).
        own = {
            "global": rng_states(),
            "generators": {name: gen.get_state() for name, gen in self._own_generators()},
        }
        ranks = all_ranks(own)
        stamp_header(
            checkpoint,
            self.family,
            batches_seen=self.batches_seen,
            g_step=self.g_step,
            nonfinite_steps=self.nonfinite_steps,
            # Each rank's own RNG states, as lists indexed by rank (see on_train_start).
            rng_states=[states["global"] for states in ranks],
            generators=[states["generators"] for states in ranks],
        )

    def _own_generators(self) -> list[tuple[str, torch.Generator]]:
        """The module's own `torch.Generator` attributes (e.g. vidgan's `frame_rng`), by name."""
        return sorted((k, v) for k, v in vars(self).items() if isinstance(v, torch.Generator))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        header = read_header(checkpoint)
        self.batches_seen = int(header.get("batches_seen", 0))
        self.g_step = int(header.get("g_step", 0))
        self._start_nonfinite_guard(skipped_before=int(header.get("nonfinite_steps", 0)))
        if self._trainer is not None and "rng_states" in header:
            # Only when resuming a fit: loading weights for inference must not reseed the caller.
            # Applied in on_train_start, after on_fit_start (which may reseed the module's own
            # generators) and the sanity check (which may draw), right before the first batch.
            states, generators = header["rng_states"], header.get("generators", {})
            if isinstance(states, dict):  # one process's states, from before they were saved per rank
                states, generators = [states], [generators]
            self._resume_rng = {"global": states, "generators": generators}

    def on_fit_start(self) -> None:
        """Under DDP, seed this rank's global RNGs with seed + rank (`ganforge.rng.seed_rank`).

        Ranks seeded alike would draw the same latents, penalty interpolates and dropout masks. The
        weights are built before the fit and every rank starts from rank 0's, so only the fit's noise
        differs per rank. A subclass seeds its own generators here too (vidgan's `frame_rng`).
        """
        if self.trainer.world_size > 1:
            seed_rank(self.global_rank)

    def on_train_end(self) -> None:
        """The non-finite guard's last check: a run of non-finite losses since the last log step raises."""
        self._check_nonfinite()

    def on_train_start(self) -> None:
        """Put an integer `val_check_interval` into generator steps; restore a resumed fit's RNGs.

        Lightning counts `val_check_interval` in training batches; a generator step takes
        `batches_per_g_step` of them. The RNGs are the global ones and the module's own generators
        (see on_load_checkpoint); each rank restores the states it saved. A checkpoint from another
        number of ranks has no states for this rank layout: then every rank reseeds with seed + rank.
        """
        if isinstance(self.trainer.val_check_interval, int):
            self.trainer.val_check_batch = self.trainer.val_check_interval * self.batches_per_g_step
        if self._resume_rng is None:
            return
        states, generators = self._resume_rng["global"], self._resume_rng["generators"]
        self._resume_rng = None
        if len(states) != self.trainer.world_size:
            rank_zero_warn(
                f"the checkpoint holds the RNG states of {len(states)} process(es) but this fit runs "
                f"{self.trainer.world_size}: each rank reseeds with seed + rank instead of resuming its noise"
            )
            seed_rank(self.global_rank)
            return
        restore_rng_states(states[self.global_rank])
        own = dict(self._own_generators())
        for name, state in generators[self.global_rank].items():
            if name not in own:
                continue
            if state.numel() != own[name].get_state().numel():  # saved by a CPU generator, resumed on a GPU
                rank_zero_warn(
                    f"{name}: the checkpoint's RNG state is another device type's; it stays reseeded"
                )
                continue
            own[name].set_state(state)
