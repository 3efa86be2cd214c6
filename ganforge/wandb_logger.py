"""A Lightning WandbLogger that never stops training, with define_metric summaries and a resumable step axis.

- **Fallback.** Online mode first checks that the W&B host answers (a plain TCP connect, a few
  seconds at most) and then calls `wandb.init` with `init_timeout`; if either fails (no network,
  no or bad API key) it warns and starts offline instead; if that fails too, a disabled run.
  Without the connect check a dead network costs ~15 s of wandb retries even with a 1 s timeout.
- **Step axis.** Every row is logged with `step=` Lightning's logging step (training batches seen,
  restored from checkpoints), as both W&B's `_step` and `trainer/global_step`, so a resumed run
  continues the axis instead of restarting at 0, also in the second offline folder.
- **Summaries.** Each new key gets `define_metric` with the summaries that make sense for it
  (`summary_ops`): min for val errors and distances, max for val scores, min/max for train losses.
- **Never fatal.** A failing `log` call warns once and is dropped.
- **Lifetime.** `finalize` finishes the run this logger started, so a second `fit` in the same
  process (tests, notebooks) starts a new run segment instead of silently reusing the old one.
  After Lightning's Slurm requeue signal (`finalize("finished")`) the logger drops everything: the
  requeued job resumes from the checkpoint saved at the signal and logs those steps again.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning_fabric.loggers.logger import _DummyExperiment
from lightning_fabric.utilities.logger import _add_prefix
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities.rank_zero import rank_zero_only, rank_zero_warn

from ganforge.errors import UserError

MODES = ("offline", "online", "disabled")
STEP_KEY = "trainer/global_step"
FALLBACKS = {"online": ("online", "offline", "disabled"), "offline": ("offline", "disabled")}
# Substrings of a metric's last path component that say which direction is better.
LOWER_IS_BETTER = ("loss", "mse", "mae", "fvd", "fid", "fd_local", "lpips", "nll")
HIGHER_IS_BETTER = ("ssim", "psnr", "soa", "acc", "clip_score", "r_precision", "precision", "recall")


def summary_ops(key: str) -> str | None:
    """W&B summary ops for `key`, e.g. "min,last" for `val/mse`; None keeps W&B's default (last)."""
    section, _, name = key.rpartition("/")
    name = name.lower()
    if section.startswith(("val", "test")):
        if any(token in name for token in LOWER_IS_BETTER):
            return "min,last"
        if any(token in name for token in HIGHER_IS_BETTER):
            return "max,last"
    if section.startswith("train") and ("loss" in name or "grad_norm" in name):
        return "min,max,last"  # both ends: a collapsing D and an exploding G each show up
    return None


def unreachable_reason(base_url: str, timeout: float = 3.0) -> str | None:
    """None when a TCP connection to the W&B host of `base_url` opens within `timeout` s, else why not."""
    url = urlparse(base_url)
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as err:
        return f"{host}:{port} is unreachable ({err})"


class GANForgeWandbLogger(WandbLogger):
    """WandbLogger with fallback, summaries and an explicit step axis (see the module docstring).

    Args:
        save_dir: directory that receives `wandb/` (the run directory).
        project: W&B project.
        run_id: W&B run id; the same id continues the same run.
        mode: "online", "offline" or "disabled".
        log_model: upload checkpoints as artifacts; only honoured online.
        init_timeout: seconds `wandb.init` may take online.
        connect_timeout: seconds the reachability check waits for the W&B host.
        **init_kwargs: more `wandb.init` arguments (entity, group, name, tags, job_type, config).
    """

    def __init__(
        self,
        *,
        save_dir: str,
        project: str,
        run_id: str,
        mode: str = "offline",
        log_model: bool = False,
        init_timeout: float = 60.0,
        connect_timeout: float = 3.0,
        **init_kwargs: Any,
    ) -> None:
        if mode not in MODES:
            raise UserError(f"wandb mode={mode!r} must be one of {', '.join(MODES)}")
        super().__init__(
            save_dir=save_dir,
            project=project,
            id=run_id,
            log_model=log_model and mode == "online",
            **init_kwargs,
        )
        self._wandb_init.pop("anonymous", None)  # deprecated in wandb 0.31: passing it only warns
        self.requested_mode = mode
        self.mode: str | None = None  # the mode the run actually started in
        self.init_timeout, self.connect_timeout = init_timeout, connect_timeout
        self._defined: set[str] = set()
        self._owns_run = False
        self._warned_log_failure = False
        self._requeued = False

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The wandb run, started on first use (rank 0 only; other ranks get a no-op object)."""
        if self._experiment is None:
            self._experiment = self._start_run()
            self._define_axes()
        return self._experiment

    def _start_run(self) -> Any:
        import wandb

        if wandb.run is not None:  # e.g. a sweep agent started the run: log into it
            self.mode, self._owns_run = "external", False
            return wandb.run
        attach_id = getattr(self, "_attach_id", None)  # set when a spawn strategy pickled this logger
        if attach_id is not None and hasattr(wandb, "_attach"):
            self.mode, self._owns_run = self.requested_mode, False
            return wandb._attach(attach_id)
        for mode in FALLBACKS.get(self.requested_mode, ("disabled",)):
            try:
                run = self._init(wandb, mode)
            except Exception as err:  # any failure here must not stop training
                next_mode = "offline" if mode == "online" else "disabled"
                rank_zero_warn(f"W&B could not start in {mode} mode ({first_line(err)}); using {next_mode}")
                continue
            self.mode, self._owns_run = mode, True
            if mode != "online":
                self._log_model = False
            return run
        self.mode, self._owns_run = "none", False
        return _DummyExperiment()  # even wandb's no-op run failed: log nowhere, keep training

    def _init(self, wandb: Any, mode: str) -> Any:
        settings = wandb.Settings(init_timeout=self.init_timeout)
        if mode == "online":
            reason = unreachable_reason(wandb.setup().settings.base_url, self.connect_timeout)
            if reason:
                raise ConnectionError(reason)
        if mode != "disabled" and self._save_dir:
            Path(self._save_dir).mkdir(parents=True, exist_ok=True)
        return wandb.init(**{**self._wandb_init, "mode": mode, "settings": settings})

    def _define_axes(self) -> None:
        run = self._experiment
        run.define_metric(STEP_KEY)
        for section in ("train/*", "val/*", "test/*", "samples/*", "*"):
            run.define_metric(section, step_metric=STEP_KEY, step_sync=True)

    def _define_summaries(self, keys: Any) -> None:
        for key in keys:
            if key in self._defined:
                continue
            self._defined.add(key)
            ops = summary_ops(key)
            if ops:
                self._experiment.define_metric(key, step_metric=STEP_KEY, summary=ops)

    def _safely(self, what: str, fn: Callable[[], None]) -> None:
        """Run `fn`; on failure warn once per logger and carry on: the dashboard never stops training."""
        if self._requeued:
            return
        try:
            fn()
        except Exception as err:
            if not self._warned_log_failure:
                self._warned_log_failure = True
                rank_zero_warn(f"W&B {what} failed ({first_line(err)}); training continues without it")

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log scalars or W&B media at Lightning's logging `step` (W&B `_step` and `trainer/global_step`)."""
        metrics = _add_prefix(dict(metrics), self._prefix, self.LOGGER_JOIN_CHAR)

        def log() -> None:
            run = self.experiment
            self._define_summaries(metrics)
            if step is None:
                run.log(dict(metrics))
            else:
                run.log({**metrics, STEP_KEY: step}, step=step)

        self._safely("logging", log)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        """Merge `params` into the run's config (LightningCLI's full config is already there)."""
        self._safely("config update", lambda: WandbLogger.log_hyperparams(self, params))

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Queue checkpoint artifacts when `log_model` is on (online only)."""
        self._safely(
            "checkpoint upload", lambda: WandbLogger.after_save_checkpoint(self, checkpoint_callback)
        )

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Upload pending checkpoints (online, on success) and finish the run this logger started."""
        self._safely("checkpoint upload", lambda: WandbLogger.finalize(self, status))
        if self._experiment is not None and self._owns_run:
            run, self._experiment = self._experiment, None
            self._defined.clear()
            # "finished" is Lightning's Slurm requeue: a pause, not a failure.
            exit_code = 0 if status in ("success", "finished") else 1
            self._safely("finish", lambda: run.finish(exit_code=exit_code))
        self._requeued = status == "finished"


def first_line(err: BaseException) -> str:
    """`Type: first line of the message`, for one-line warnings."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
