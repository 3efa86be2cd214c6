"""The LightningCLI runner of every family's `fit | validate | test` (`ganforge.cli.dispatch` imports it
only for those commands, so other commands start without Lightning).

Every command exits non-zero with a one-line `prog: error: ...` message for bad input (set
GANFORGE_DEBUG=1 to see the traceback instead).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.plugins.io import CheckpointIO
from pytorch_lightning.plugins.layer_sync import LayerSync

from ganforge.checkpoint import AtomicCheckpointIO
from ganforge.console import ParameterSummary, quiet_lightning
from ganforge.errors import UserError, caused_by_user, run_guarded, union_cause
from ganforge.fit_end import FitEnd
from ganforge.layer_sync import BatchStatisticsSync
from ganforge.logging import WandbOptions, build_loggers
from ganforge.resume import AUTO, newest_checkpoint
from ganforge.run_checkpoint import RunCheckpoint
from ganforge.sample_logging import SampleMediaCallback
from ganforge.slurm_requeue import REQUEST_ENV, SlurmRequeue
from ganforge.trainer import default_strategy, progress_callbacks


class GANForgeCLI(LightningCLI):
    """LightningCLI with ganforge's trainer defaults.

    - atomic checkpoint writes, the newest periodic checkpoints and a `last.ckpt` that holds the
      final state of every fit (`RunCheckpoint`, `FitEnd`);
    - `--ckpt_path auto`: resume from the newest checkpoint of the run directory, or start fresh;
    - a rich progress bar in generator steps;
    - whenever more than one process trains, the `gan_ddp` strategy (G and D synchronised separately;
      plain DDP for other modules; `ganforge.gan_ddp`);
    - Slurm preemption (`SlurmRequeue`) whenever `GANFORGE_REQUEUE_FILE` is set (slurm/train.sbatch);
    - `links`: (source, target) config keys whose target value is the source's (`link_arguments`),
      e.g. ("data.init_args.image_size", "model.init_args.resolution"): the config states it once;
    - `retired`: {config key: how to rewrite it}; a config that still uses the key fails with that
      message instead of jsonargparse's.
    """

    def __init__(
        self,
        *args: Any,
        links: Sequence[tuple[str, str]] = (),
        retired: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.links, self.retired = tuple(links), dict(retired or {})
        super().__init__(*args, **kwargs)

    def parse_arguments(self, parser: Any, args: Any) -> None:
        from jsonargparse import ArgumentError

        try:
            super().parse_arguments(parser, args)
        except ArgumentError as err:
            hint = next((hint for key, hint in self.retired.items() if _rejects(err, key)), None)
            if hint is None:
                raise
            raise UserError(hint) from err

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Any:
        # Added here rather than in trainer_defaults: jsonargparse cannot serialise the plugin into
        # config.yaml. A user's own CheckpointIO plugin wins.
        plugins = _as_list(config.get("plugins"))
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            config = {**config, "plugins": [*plugins, AtomicCheckpointIO()]}
        # `sync_batchnorm: true` is the one switch for torch's batch norms and ganforge's own
        # (vidgan's FrameBatchNorm); Lightning would apply a LayerSync plugin even with it off.
        plugins = _as_list(config.get("plugins"))
        if config.get("sync_batchnorm") and not any(isinstance(p, LayerSync) for p in plugins):
            config = {**config, "plugins": [*plugins, BatchStatisticsSync()]}
        if config.get("enable_progress_bar", True) is not False:
            callbacks = [*callbacks, *progress_callbacks(True)]
        callbacks = [*callbacks, FitEnd()]
        if config.get("enable_model_summary", True) is not False:
            callbacks = [*callbacks, ParameterSummary()]
        if config.get("logger") is True:
            config, callbacks = self._default_logging(config, callbacks)
        if os.environ.get(REQUEST_ENV) and not any(
            isinstance(c, SlurmRequeue) for c in [*callbacks, *_as_list(config.get("callbacks"))]
        ):
            callbacks = [*callbacks, SlurmRequeue()]
        return super()._instantiate_trainer(config, callbacks)

    # ------------------------------------------------------------------ logging (see ganforge.logging)
    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_class_arguments(WandbOptions, "wandb")
        for source, target in self.links:
            parser.link_arguments(source, target)

    def _default_logging(self, config: dict[str, Any], callbacks: list[Any]) -> tuple[dict[str, Any], list]:
        """`trainer.logger: true` -> W&B + CSV loggers and, for fit, the sample-media callback.

        Checkpoints stay in `<run dir>/checkpoints` as without a logger (Lightning would move them to
        `<run dir>/<project>/<run id>/checkpoints`).
        """
        sub = self.subcommand or "fit"
        root = os.path.realpath(config.get("default_root_dir") or os.getcwd())
        options: WandbOptions = (
            self.config_init[sub]["wandb"] if self.subcommand else self.config_init["wandb"]
        )
        loggers = build_loggers(
            options,
            root,
            default_project=self._family(),
            job_type=sub,
            resume=sub == "fit" and self.config[sub].get("ckpt_path") is not None,
            config=self._resolved_config(),
        )
        for callback in [
            *_as_list(config.get("callbacks")),
            *_as_list(self.trainer_defaults.get("callbacks")),
        ]:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
                callback.dirpath = os.path.join(root, "checkpoints")
        if sub == "fit":
            local_dir = os.path.join(root, "samples") if options.local_media else None
            media = SampleMediaCallback(
                options.media_every_n_steps, options.media_max_items, options.video_format, local_dir
            )
            callbacks = [*callbacks, media]
        return {**config, "logger": loggers}, callbacks

    def _family(self) -> str:
        """The model's `family` without its stage ("t2i-clip" -> "t2i"), else the command's name."""
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        family = getattr(config.get("model"), "family", None) or self.parser_kwargs.get("prog") or "ganforge"
        return str(family).split("-")[0]

    def _resolved_config(self) -> dict[str, Any] | None:
        """The full resolved config as plain data (what `config.yaml` holds), for `wandb.config`."""
        import yaml

        sub = self.subcommand
        try:
            with warnings.catch_warnings():  # jsonargparse already warned about unserialisable values
                warnings.simplefilter("ignore")
                text = self._parser(sub).dump(self.config[sub] if sub else self.config, skip_none=False)
            return yaml.safe_load(text)
        except Exception as err:  # the dashboard must never stop training
            warnings.warn(f"the resolved config could not be recorded in W&B ({err!r})", stacklevel=2)
            return None

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        trainer = cfg["trainer"]
        if cfg.get("ckpt_path") == AUTO:
            root = trainer.get("default_root_dir") or os.getcwd()
            found = newest_checkpoint(root, self._checkpoint_dirs(cfg, root))
            what = f"resuming from {found}" if found else "no checkpoint, starting fresh"
            print(f"--ckpt_path auto: {what}")
            cfg["ckpt_path"] = None if found is None else str(found)
        if trainer.get("strategy", "auto") == "auto":
            trainer["strategy"] = default_strategy(
                trainer.get("devices", "auto"), trainer.get("num_nodes", 1)
            )

    def _checkpoint_dirs(self, cfg: Any, root: str) -> list[str]:
        """`<root>/checkpoints` (where a callback without `dirpath` writes) and every callback's `dirpath`."""
        callbacks = [
            *_as_list(cfg["trainer"].get("callbacks")),
            *_as_list(self.trainer_defaults.get("callbacks")),
        ]
        dirs = [
            getattr(c, "dirpath", None) or getattr(getattr(c, "init_args", None), "dirpath", None)
            for c in callbacks
        ]
        return [os.path.join(root, "checkpoints"), *(d for d in dirs if d)]

    def stop_signal(self) -> int | None:
        """The signal (SIGTERM, SIGINT) that stopped this fit early, if any (see ganforge.fit_end)."""
        trainer = getattr(self, "trainer", None)
        ends = [c for c in getattr(trainer, "callbacks", []) if isinstance(c, FitEnd)]
        return ends[0].stopped_by if ends else None


def _rejects(err: Exception, key: str) -> bool:
    """Whether jsonargparse's `err` refuses option `key` ("data.source": option source of section data)."""
    section, _, option = key.rpartition(".")
    text = str(err)
    return f'"{section}"' in text and f"'{option}' is not accepted" in text


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


def trainer_defaults(family: str) -> dict[str, Any]:
    """Trainer defaults shared by `vidgan fit` and `t2i fit`; YAML and flags override them."""
    return {
        "default_root_dir": f"runs/{family}",
        "callbacks": [RunCheckpoint(every_n_train_steps=500, keep_last=3)],
        # True = ganforge's loggers (W&B, configured by the `wandb:` section, plus CSV); false = none.
        "logger": True,
    }


def run_lightning_cli(
    prog: str,
    model_class: type,
    datamodule_class: type,
    argv: Sequence[str],
    family: str,
    *,
    subclass_mode_model: bool = False,
    subclass_mode_data: bool = False,
    links: Sequence[tuple[str, str]] = (),
    retired: Mapping[str, str] | None = None,
) -> int:
    """Run LightningCLI (`fit`, `validate`, `test`, ...) for one family with one-line errors.

    With `subclass_mode_model` / `subclass_mode_data` the config's `class_path` picks any subclass
    of `model_class` / `datamodule_class` (vidgan: VideoGAN or the baseline, Moving MNIST or video
    folders; t2i: every stage). `links` and `retired`: see `GANForgeCLI`.
    """

    stopped: list[int] = []

    def run() -> None:
        try:
            cli = instantiate()
        except ValueError as err:  # a user error in a class's __init__ arrives wrapped by jsonargparse
            cause = union_cause(err, {"model": model_class, "data": datamodule_class})
            if cause is None or not caused_by_user(err):
                raise
            raise UserError(cause) from err
        signum = cli.stop_signal()
        if signum is not None:
            stopped.append(signum)

    def instantiate() -> GANForgeCLI:
        with quiet_lightning(), warnings.catch_warnings():
            # We pass argv explicitly (tests call main(argv)); Lightning warns when sys.argv also has it.
            warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter.*")
            return GANForgeCLI(
                model_class,
                datamodule_class,
                subclass_mode_model=subclass_mode_model,
                subclass_mode_data=subclass_mode_data,
                args=list(argv),
                trainer_defaults=trainer_defaults(family),
                save_config_kwargs={"overwrite": True},
                parser_kwargs={"exit_on_error": False, "prog": prog},
                auto_configure_optimizers=False,
                links=links,
                retired=retired,
            )

    try:
        code = run_guarded(prog, run)
    finally:
        teardown_distributed()
    return 128 + stopped[0] if code == 0 and stopped else code  # the shell's code for a signal stop


def teardown_distributed() -> None:
    """Destroy the process group if one is up: without it ~1 in 3 srun jobs aborts at exit (rc 134)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
