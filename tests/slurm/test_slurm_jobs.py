"""Training through slurm/train.sbatch and slurm/sweep.sbatch on a real two-node Slurm cluster (CPU, gloo).

Every rank runs slurm/testing/rank_probe.py's callback, which records the step it started from and
a digest of its weights at the end; W&B runs offline and is read back from its run files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from slurm_jobs import describe_job, job_info, probe_records, sbatch, wait_for_job
from wandb_reader import OfflineRun, offline_run_dirs, read_run

from ganforge.checkpoint import load_checkpoint

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]


@dataclass(frozen=True)
class TrainJob:
    """A `fit` run for train.sbatch: command, config and the overrides that keep it small.

    Steps are Lightning's global steps: generator steps (2 batches each for vidgan).
    """

    command: str
    config: str
    overrides: tuple[str, ...]
    short_steps: int  # the two-node job and each array task
    long_steps: int  # the preempted job: it must run well past its first checkpoint
    checkpoint_every: int  # an extra ModelCheckpoint, so the first checkpoint comes early

    def fit_args(self, max_steps: int) -> list[str]:
        """Overrides after the config: step budget, the job's own overrides, checkpoints, the rank probe."""
        return [
            "--trainer.max_steps",
            str(max_steps),
            *self.overrides,
            "--trainer.callbacks+=ModelCheckpoint",
            f"--trainer.callbacks.every_n_train_steps={self.checkpoint_every}",
            "--trainer.callbacks.save_top_k=-1",
            "--trainer.callbacks+=rank_probe.RankProbe",
        ]

    def train_args(self, max_steps: int) -> list[str]:
        """Arguments of `slurm/train.sbatch` in CPU mode."""
        return ["slurm/train.sbatch", "--cpus", self.command, self.config, *self.fit_args(max_steps)]


# The training job of every test. (The ring toy runs them in about half the time: command
# "ganforge", configs/ganforge/ring.yaml, --data.batches_per_epoch 100000, steps 200/1000/100.)
# Test nodes have one CPU each: every job asks for --cpus-per-task=1 (the scripts default to 9),
# which fits the config's 0 DataLoader workers.
JOB = TrainJob(
    command="vidgan",
    config="configs/vidgan/moving_mnist_tiny.yaml",
    overrides=(
        "--data.batch_size=4",
        # Two ranks split an epoch's 500 batches: validation must come within each rank's 250.
        "--trainer.val_check_interval=20",
        # Log often enough that the preempted half of a run has W&B history too.
        "--trainer.log_every_n_steps=5",
        "--trainer.enable_progress_bar=false",
    ),
    short_steps=10,
    long_steps=20,
    checkpoint_every=5,
)


def wandb_runs(run_dir: Path) -> list[OfflineRun]:
    """The job's offline W&B runs (one per start of the job), oldest first."""
    return [read_run(path) for path in offline_run_dirs(run_dir)]


def submitted_id(stdout: str) -> str:
    match = re.search(r"(?:Submitted batch job )?(\d+)", stdout)
    assert match, f"no job id in sbatch output {stdout!r}"
    return match.group(1)


def test_two_node_job_ends_with_identical_weights_on_both_ranks(slurm_cluster, tmp_path):
    runs = tmp_path / "runs"
    res = sbatch(
        slurm_cluster,
        runs,
        ["--wait", "--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=1"],
        JOB.train_args(JOB.short_steps),
        240,
    )
    job_id = submitted_id(res.stdout)
    assert res.returncode == 0, (
        f"sbatch --wait exited {res.returncode}: {res.stderr}\n{describe_job(slurm_cluster, runs)}"
    )
    info = job_info(slurm_cluster, job_id)
    assert (info["JobState"], info["ExitCode"], info["NumNodes"]) == ("COMPLETED", "0:0", "2")

    run_dir = runs / job_id
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == JOB.short_steps
    probes = probe_records(run_dir)
    assert sorted(probes) == [0, 1]
    starts = [records[0] for records in probes.values()]
    ends = [records[-1] for records in probes.values()]
    assert {start["env"]["SLURMD_NODENAME"] for start in starts} == {"n1", "n2"}
    assert all(start["world_size"] == 2 and start["global_step"] == 0 for start in starts)
    assert [end["global_step"] for end in ends] == [JOB.short_steps] * 2
    assert ends[0]["digest"] == ends[1]["digest"], "the two DDP ranks ended with different weights"

    (wandb_run,) = wandb_runs(run_dir)
    assert wandb_run.run_id == job_id
    assert wandb_run.values("train/d_loss"), "no training losses in the W&B history"


def test_preempted_job_is_requeued_and_resumes_from_its_hpc_checkpoint(slurm_cluster, tmp_path):
    runs = tmp_path / "runs"
    res = sbatch(
        slurm_cluster,
        runs,
        ["--parsable", "--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=1"],
        JOB.train_args(JOB.long_steps),
    )
    assert res.returncode == 0, res.stderr
    job_id = submitted_id(res.stdout)
    run_dir = runs / job_id

    # Preempt once training is past its first periodic checkpoint.
    def has_checkpoint(_: dict[str, str]) -> bool:
        return any((run_dir / "checkpoints").glob("*.ckpt"))

    wait_for_job(slurm_cluster, job_id, 150, until=has_checkpoint, outputs=runs)
    assert job_info(slurm_cluster, job_id)["JobState"] == "RUNNING", (
        "finished before the signal: raise long_steps"
    )
    slurm_cluster.run("scancel", "--signal=USR1", "--batch", job_id)

    info = wait_for_job(slurm_cluster, job_id, 200, outputs=runs)
    details = describe_job(slurm_cluster, runs)
    assert (info["JobState"], info["ExitCode"], info["Restarts"]) == ("COMPLETED", "0:0", "1"), details
    hpc_ckpt = run_dir / "hpc_ckpt_1.ckpt"
    resumed_step = load_checkpoint(hpc_ckpt)["global_step"]
    assert JOB.checkpoint_every <= resumed_step < JOB.long_steps
    # Training stops at the batch end where the generator step reaches max_steps.
    final_step = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"]
    assert final_step - JOB.long_steps in (0, 1)
    assert not list((run_dir / "checkpoints").glob("last-v*.ckpt")), "the resumed run versioned last.ckpt"

    # Every rank stopped at the checkpointed step, then started again from it.
    probes = probe_records(run_dir)
    assert sorted(probes) == [0, 1], details
    for records in probes.values():
        starts = [r for r in records if r["event"] == "start"]
        assert [start["global_step"] for start in starts] == [0, resumed_step]
        assert Path(starts[1]["ckpt_path"]).resolve() == hpc_ckpt.resolve()
        assert starts[1]["env"]["SLURM_RESTART_COUNT"] == "1"
        assert [r["global_step"] for r in records if r["event"] == "end"] == [resumed_step, final_step]
    digests = [[r["digest"] for r in records if r["event"] == "end"] for records in probes.values()]
    assert digests[0] == digests[1], "the ranks' weights differ at the preemption or at the end"

    # Both halves log to the job's one W&B run, and the second half's history continues the first's
    # (its x axis, trainer/global_step, is Lightning's count of batches).
    before, after = wandb_runs(run_dir)
    assert before.run_id == after.run_id == job_id
    steps_before, steps_after = before.values("trainer/global_step"), after.values("trainer/global_step")
    assert steps_before and steps_after and min(steps_after) > max(steps_before)


def test_sweep_array_tasks_get_their_own_run_ids_and_checkpoints(slurm_cluster, tmp_path):
    runs = tmp_path / "runs"
    sweep = tmp_path / "sweep.txt"
    sweep.write_text(
        f"# one line per array task\n{JOB.config} --seed_everything 1\n\n{JOB.config} --seed_everything 2\n"
    )
    args = ["slurm/sweep.sbatch", "--cpus", JOB.command, str(sweep), *JOB.fit_args(JOB.short_steps)]
    options = ["--parsable", "--array=0-1", "--nodes=1", "--ntasks-per-node=1", "--cpus-per-task=1"]
    res = sbatch(slurm_cluster, runs, options, args)
    assert res.returncode == 0, res.stderr
    array_id = submitted_id(res.stdout)

    run_ids = [f"{array_id}_{task}" for task in (0, 1)]
    for run_id in run_ids:
        info = wait_for_job(slurm_cluster, run_id, 200, outputs=runs)
        assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0"), describe_job(slurm_cluster, runs)

    digests, wandb_ids = [], []
    for run_id in run_ids:
        run_dir = runs / run_id
        assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == JOB.short_steps
        (records,) = probe_records(run_dir).values()
        start, end = records
        assert start["world_size"] == 1
        assert (start["env"]["WANDB_RUN_ID"], start["env"]["WANDB_RUN_GROUP"]) == (
            run_id,
            f"array-{array_id}",
        )
        digests.append(end["digest"])
        (wandb_run,) = wandb_runs(run_dir)
        assert wandb_run.group == f"array-{array_id}" and wandb_run.values("train/d_loss")
        wandb_ids.append(wandb_run.run_id)
    assert wandb_ids == run_ids
    assert digests[0] != digests[1], (
        "the two seeds trained identical weights: the sweep lines were not applied"
    )


def test_too_few_cpus_per_task_stop_the_job_before_any_task_starts(slurm_cluster, tmp_path):
    runs = tmp_path / "runs"
    args = [*JOB.train_args(JOB.short_steps), "--data.num_workers=2"]
    options = ["--wait", "--nodes=1", "--ntasks-per-node=1", "--cpus-per-task=1"]
    res = sbatch(slurm_cluster, runs, options, args, 120)
    job_id = submitted_id(res.stdout)
    info = job_info(slurm_cluster, job_id)
    assert (res.returncode, info["JobState"], info["ExitCode"]) == (2, "FAILED", "2:0"), describe_job(
        slurm_cluster, runs
    )
    output = (runs / f"slurm-{job_id}.out").read_text()
    assert [line for line in output.splitlines() if "error" in line.lower()] == [
        "train.sbatch: error: 1 CPU(s) per task but the config's DataLoader has 2 workers: submit with "
        "--cpus-per-task=3 (workers + the training process) or lower num_workers"
    ]
    assert not (runs / job_id / "probe").exists(), "a training task started"
