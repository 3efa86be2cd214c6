"""Experiment logging set-up shared by every ganforge CLI: the `wandb:` YAML section, run identity, loggers.

`build_loggers` returns `[GANForgeWandbLogger, CSVLogger]`:

- W&B writes `<run dir>/wandb/offline-run-*/` (offline by default) or streams online; it falls back
  online -> offline -> disabled with a warning instead of stopping training;
- Lightning's CSVLogger writes `<run dir>/csv/version_N/metrics.csv` for people without W&B (one
  version folder per invocation, so a resume never overwrites the earlier rows).

Run identity (`resolve_run_id`), first match wins:

1. `WANDB_RUN_ID` from the environment (the Slurm scripts export it);
2. under Slurm, the job id: `SLURM_ARRAY_JOB_ID_SLURM_ARRAY_TASK_ID` for array tasks (the `%A_%a`
   that squeue shows), else `SLURM_JOB_ID`; a requeued job keeps it, so it continues its run;
3. when resuming (`fit --ckpt_path ...`), the id saved in `<run dir>/wandb_run_id`;
4. a fresh id, saved to `<run dir>/wandb_run_id` for the next resume.
"""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import CSVLogger, Logger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from ganforge.errors import UserError
from ganforge.wandb_logger import MODES, GANForgeWandbLogger

RUN_ID_FILE = "wandb_run_id"
# Legacy spellings of WANDB_MODE that wandb still accepts.
MODE_ALIASES = {"dryrun": "offline", "run": "online"}


@dataclass
class WandbOptions:
    """The `wandb:` section of a ganforge YAML config.

    Args:
        project: W&B project; default `WANDB_PROJECT`, else the model's family ("vidgan", "t2i", ...).
        entity: W&B user or team; default your W&B default entity.
        group: run group; default `WANDB_RUN_GROUP`, else `array-<id>` for a Slurm array task.
        name: display name; default W&B's generated name.
        tags: run tags.
        mode: "offline" (default), "online" or "disabled"; the environment's `WANDB_MODE` wins.
        log_model: upload checkpoints as W&B artifacts (online mode only; off by default: a paper-scale
            checkpoint is ~1 GB, and `true` would upload every periodic one).
        init_timeout: seconds `wandb.init` may take online before falling back to offline.
        media_every_n_steps: log `model.sample(batch)` media every this many steps (generator steps).
        media_max_items: items of the fixed validation batch that `sample` sees.
        video_format: "mp4" or "gif", for W&B videos and the local files.
        local_media: also write the sample media as files under `<run dir>/samples/`.
    """

    project: str | None = None
    entity: str | None = None
    group: str | None = None
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    mode: str = "offline"
    log_model: bool = False
    init_timeout: float = 60.0
    media_every_n_steps: int = 500
    media_max_items: int = 8
    video_format: str = "mp4"
    local_media: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UserError(f"wandb.mode={self.mode!r} must be one of {', '.join(MODES)}")
        if self.media_every_n_steps < 1:
            raise UserError(f"wandb.media_every_n_steps={self.media_every_n_steps} must be >= 1")
        if self.media_max_items < 1:
            raise UserError(f"wandb.media_max_items={self.media_max_items} must be >= 1")
        if self.video_format not in ("mp4", "gif"):
            raise UserError(f"wandb.video_format={self.video_format!r} must be 'mp4' or 'gif'")
        if self.init_timeout <= 0:
            raise UserError(f"wandb.init_timeout={self.init_timeout} must be > 0 seconds")


def resolve_mode(configured: str, env: Mapping[str, str] | None = None) -> str:
    """The W&B mode: `WANDB_MODE` from the environment when set, else the configured one."""
    env = os.environ if env is None else env
    mode = env.get("WANDB_MODE", "").strip().lower() or configured
    mode = MODE_ALIASES.get(mode, mode)
    if mode not in MODES:
        raise UserError(f"WANDB_MODE={mode!r} must be one of {', '.join(MODES)}")
    return mode


def slurm_run_id(env: Mapping[str, str]) -> str | None:
    """`<array job>_<task>` for a Slurm array task, `<job id>` for a plain job, None outside Slurm."""
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or None


def fresh_run_id() -> str:
    """8 random lowercase letters and digits, like W&B's own ids."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def resolve_run_id(
    root_dir: str | Path, resume: bool, env: Mapping[str, str] | None = None, save: bool = True
) -> str:
    """The run id (see the module docstring for the order); `save` writes it to `<root_dir>/wandb_run_id`."""
    env = os.environ if env is None else env
    id_file = Path(root_dir) / RUN_ID_FILE
    run_id = env.get("WANDB_RUN_ID") or slurm_run_id(env)
    if run_id is None and resume and id_file.is_file():
        run_id = id_file.read_text().strip() or None
    run_id = run_id or fresh_run_id()
    if save:
        _save_run_id(id_file, run_id)
    return run_id


@rank_zero_only
def _save_run_id(id_file: Path, run_id: str) -> None:
    id_file.parent.mkdir(parents=True, exist_ok=True)
    id_file.write_text(run_id + "\n")


def slurm_group(env: Mapping[str, str]) -> str | None:
    """`array-<array job id>` for a Slurm array task, so a sweep's runs group together."""
    array_job = env.get("SLURM_ARRAY_JOB_ID")
    return f"array-{array_job}" if array_job else None


def build_loggers(
    options: WandbOptions,
    root_dir: str | Path,
    *,
    default_project: str,
    job_type: str = "fit",
    resume: bool = False,
    config: dict[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> list[Logger]:
    """The W&B logger (first, so Lightning saves config.yaml in `root_dir`) and a CSV logger.

    Args:
        options: the `wandb:` config section.
        root_dir: the run directory (the trainer's `default_root_dir`).
        default_project: project when neither the config nor `WANDB_PROJECT` names one.
        job_type: W&B job type, the LightningCLI subcommand ("fit", "validate", ...).
        resume: reuse the id saved in `root_dir` (a `fit --ckpt_path` resume).
        config: the full resolved config, recorded as the run's `wandb.config`.
        env: environment variables (default `os.environ`).
    """
    env = os.environ if env is None else env
    mode = resolve_mode(options.mode, env)
    wandb_logger = GANForgeWandbLogger(
        save_dir=str(root_dir),
        project=options.project or env.get("WANDB_PROJECT") or default_project,
        # Only training runs own the id file: a `validate` run must not redirect the next resume.
        run_id=resolve_run_id(root_dir, resume, env, save=job_type == "fit"),
        mode=mode,
        log_model=options.log_model,
        init_timeout=options.init_timeout,
        entity=options.entity,
        group=options.group or env.get("WANDB_RUN_GROUP") or slurm_group(env),
        name=options.name,
        tags=list(options.tags) or None,
        job_type=job_type,
        config=config,
    )
    return [wandb_logger, CSVLogger(save_dir=str(root_dir), name="csv")]
