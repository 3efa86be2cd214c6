"""Submitting jobs to the test cluster and reading what they left: job fields, outputs, RankProbe records."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from cluster import LocalSlurmCluster, free_ports

REPO = Path(__file__).resolve().parents[2]
TESTING_DIR = REPO / "slurm" / "testing"
FINISHED_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}
# Variables of an enclosing job or launcher that must not leak into the test cluster's jobs.
LEAKY_PREFIXES = ("SLURM_", "SBATCH_", "SRUN_", "SALLOC_", "WANDB_")
LEAKY_KEYS = {"MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK"}


def job_env(cluster: LocalSlurmCluster, runs: Path) -> dict[str, str]:
    """The environment sbatch passes to a job: the cluster's, offline W&B, runs under `runs`."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(LEAKY_PREFIXES) and key not in LEAKY_KEYS
    }
    env = cluster.env(base)
    env.update(
        {
            "GANFORGE_RUN_ROOT": str(runs),
            "GANFORGE_VENV": str(Path(sys.executable).parent.parent),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTING_DIR), base.get("PYTHONPATH")])),
            "OMP_NUM_THREADS": "1",
            "WANDB_MODE": "offline",
            "WANDB_SILENT": "true",
            # DDP rendezvous port from a probe: jobs of another test cluster on this host may be running.
            "MASTER_PORT": str(free_ports(1)[0]),
        }
    )
    return env


def sbatch(
    cluster: LocalSlurmCluster,
    runs: Path,
    options: list[str],
    script_args: list[str],
    timeout: float = 30,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run sbatch from the repository root (the job's submit dir); output goes to `runs/slurm-<job>.out`.

    `env` is set on top of `job_env` (the `VAR=value` of a `VAR=value sbatch ...` line).
    """
    runs.mkdir(parents=True, exist_ok=True)
    pattern = "%A_%a" if any(opt.startswith("--array") for opt in options) else "%j"
    argv = ["sbatch", f"--output={runs}/slurm-{pattern}.out", *options, *script_args]
    return subprocess.run(
        argv,
        cwd=REPO,
        env={**job_env(cluster, runs), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def job_info(cluster: LocalSlurmCluster, job_id: str) -> dict[str, str]:
    """`scontrol show job` fields (JobState, Restarts, ExitCode, ...) of one job or array task."""
    out = cluster.run("scontrol", "show", "job", "-o", job_id).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out.splitlines()[0]))


def wait_for_job(
    cluster: LocalSlurmCluster,
    job_id: str,
    timeout: float,
    until: Callable[[dict[str, str]], bool] | None = None,
    outputs: Path | None = None,
) -> dict[str, str]:
    """Poll until the job has finished (a requeued job has not) or `until(fields)` holds; return fields."""
    deadline = time.monotonic() + timeout
    while True:
        info = job_info(cluster, job_id)
        if info["JobState"] in FINISHED_STATES or (until is not None and until(info)):
            return info
        if time.monotonic() > deadline:
            details = describe_job(cluster, outputs) if outputs is not None else cluster.log_tail()
            raise TimeoutError(f"job {job_id} still {info['JobState']} after {timeout:.0f} s\n{details}")
        time.sleep(0.5)


def describe_job(cluster: LocalSlurmCluster, runs: Path) -> str:
    """Job output files and daemon log tails, for assertion messages."""
    outputs = [f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(runs.glob("*.out"))]
    return "\n".join([*outputs, cluster.log_tail()])


def probe_records(run_dir: Path) -> dict[int, list[dict]]:
    """RankProbe records (slurm/testing/rank_probe.py) per rank, in the order they were written."""
    return {
        int(path.stem.removeprefix("rank")): [json.loads(line) for line in path.read_text().splitlines()]
        for path in sorted((run_dir / "probe").glob("rank*.jsonl"))
    }
