"""Lightning's `devices` and `num_nodes` for one Slurm task, from the GPUs that task can see.

Slurm binds GPUs to tasks in one of two styles, and Lightning accepts only settings that match
what each process sees:

- **all visible** (`--gpus-per-node=G`, no binding): every task of a node sees the node's G GPUs.
  Lightning wants `devices=G` (= `--ntasks-per-node`) and `num_nodes` = nodes, and puts local
  rank i on `cuda:i`.
- **one per task** (`--gpus-per-task=1`, or `--gpu-bind=single:1` / `map_gpu:...`): each task's
  `CUDA_VISIBLE_DEVICES` names one GPU, its `cuda:0`. With `devices=G` Lightning stops with "You
  requested gpu: [0, 1, 2, 3] But your machine only has: [0]". Each task is then its own
  one-GPU node: `devices=1`, `num_nodes` = all tasks, and `SLURM_NTASKS_PER_NODE=1`,
  `SLURM_LOCALID=0`, `SLURM_NODEID=<global rank>` in the task, so Lightning's Slurm checks agree
  and rank r uses `cuda:0`. Global rank and world size stay Slurm's (`SLURM_PROCID`,
  `SLURM_NTASKS`); `trainer.local_rank` is 0 on every task.

Any other count (e.g. `--gpu-bind=closest` giving 2 of 4 GPUs to each task) is refused with a
one-line error that names both fixes. `slurm/train.sbatch` runs every task through

    python -m ganforge.slurm_devices {gpu|cpu} PROGRAM [ARGS ...]

which sets those variables and executes `PROGRAM ARGS --trainer.accelerator A --trainer.devices D
--trainer.num_nodes N`. `python -m ganforge.slurm_devices workers < resolved.yaml` prints the
`data.num_workers` of a `--print_config` output, for the script's CPUs-per-task check.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ganforge.errors import UserError

ACCELERATORS = ("gpu", "cpu")


class SlurmLayoutError(UserError):
    """The task's Slurm variables or visible GPUs admit no Lightning device layout."""


@dataclass(frozen=True)
class TaskLayout:
    """What one task passes to Lightning, and the Slurm variables it must see to agree with it."""

    devices: int
    num_nodes: int
    style: str  # "all visible", "one per task" or "cpu"
    env: dict[str, str] = field(default_factory=dict)


def _int_var(env: Mapping[str, str], *names: str) -> int:
    """The first of `names` set in `env`, as an int (the "4(x2)" form of SLURM_TASKS_PER_NODE too)."""
    for name in names:
        value = env.get(name, "").split("(")[0]
        if value:
            if not value.isdigit():
                raise SlurmLayoutError(f"{name}={env[name]!r} is not a count")
            return int(value)
    raise SlurmLayoutError(f"none of {', '.join(names)} is set: run the task with srun inside a Slurm job")


def visible_gpus(env: Mapping[str, str]) -> int | None:
    """GPUs named by CUDA_VISIBLE_DEVICES (0 for "" or Slurm's "NoDevFiles"); None when it is unset."""
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    entries = [entry for entry in value.split(",") if entry.strip()]
    return 0 if entries == ["NoDevFiles"] else len(entries)


def task_layout(env: Mapping[str, str], accelerator: str, gpus: int | None = None) -> TaskLayout:
    """The layout for the task whose Slurm variables are `env` and which sees `gpus` GPUs.

    `gpus` is only read for accelerator "gpu"; SlurmLayoutError when no layout fits.
    """
    if accelerator not in ACCELERATORS:
        raise SlurmLayoutError(f"accelerator {accelerator!r} must be one of {', '.join(ACCELERATORS)}")
    tasks_per_node = _int_var(env, "SLURM_NTASKS_PER_NODE", "SLURM_TASKS_PER_NODE")
    nodes = _int_var(env, "SLURM_JOB_NUM_NODES", "SLURM_NNODES")
    if accelerator == "cpu":
        return TaskLayout(tasks_per_node, nodes, "cpu")
    if gpus == tasks_per_node:
        return TaskLayout(tasks_per_node, nodes, "all visible")
    if gpus == 1:
        rank = str(_int_var(env, "SLURM_PROCID"))
        bound = {"SLURM_NTASKS_PER_NODE": "1", "SLURM_LOCALID": "0", "SLURM_NODEID": rank}
        return TaskLayout(1, _int_var(env, "SLURM_NTASKS"), "one per task", bound)
    shown = env.get("CUDA_VISIBLE_DEVICES", "unset")
    raise SlurmLayoutError(
        f"task {env.get('SLURM_PROCID', '?')} sees {gpus} GPU(s) (CUDA_VISIBLE_DEVICES={shown}) with "
        f"{tasks_per_node} task(s) per node: give each task all the node's GPUs (--gpus-per-node="
        f"{tasks_per_node}, no --gpu-bind) or exactly one (--gpus-per-task=1 or --gpu-bind=single:1)"
    )


def dataloader_workers(config: Mapping[str, Any]) -> int:
    """`data.num_workers` (or `data.init_args.num_workers`) of a resolved config; 0 when absent."""
    data = config.get("data") or {}
    data = data.get("init_args", data) if isinstance(data, Mapping) else {}
    return int(data.get("num_workers") or 0)


def _count_gpus() -> int:
    import torch  # only when CUDA_VISIBLE_DEVICES is unset: torch counts without initialising CUDA

    return torch.cuda.device_count()


def exec_task(accelerator: str, argv: list[str]) -> None:
    """Replace this process by `argv` with the task's layout appended as `--trainer.*` overrides."""
    env = os.environ
    gpus = None
    if accelerator == "gpu":
        gpus = visible_gpus(env)
        gpus = _count_gpus() if gpus is None else gpus
    layout = task_layout(env, accelerator, gpus)
    os.environ.update(layout.env)
    if env.get("SLURM_PROCID") == "0":
        print(
            f"slurm_devices: {layout.style}: --trainer.devices {layout.devices} --trainer.num_nodes "
            f"{layout.num_nodes} per task",
            file=sys.stderr,
            flush=True,
        )
    overrides = ["--trainer.accelerator", accelerator, "--trainer.devices", str(layout.devices)]
    try:
        os.execvp(argv[0], [*argv, *overrides, "--trainer.num_nodes", str(layout.num_nodes)])
    except OSError as err:
        raise SlurmLayoutError(f"cannot run '{argv[0]}': {err.strerror}") from None


def main(argv: list[str] | None = None) -> int:
    """`{gpu|cpu} PROGRAM [ARGS ...]` (never returns on success) or `workers`; 2 with a one-line error."""
    args = sys.argv[1:] if argv is None else argv
    usage = "usage: python -m ganforge.slurm_devices {gpu|cpu} PROGRAM [ARGS ...] | workers < CONFIG.yaml"
    try:
        if args == ["workers"]:
            import yaml

            print(dataloader_workers(yaml.safe_load(sys.stdin) or {}))
            return 0
        if len(args) < 2 or args[0] not in ACCELERATORS:
            raise SlurmLayoutError(usage)
        exec_task(args[0], args[1:])
    except SlurmLayoutError as err:
        print(f"slurm_devices: error: {err}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
