"""Every `sbatch` line of README.md and docs/*.md, submitted to the local two-node Slurm test cluster.

tests/test_doc_snippets.py parses the `vidgan`/`t2i`/`ganforge` command that a documented
`sbatch ... slurm/train.sbatch PROG CONFIG ...` line runs; here the sbatch line itself goes to a
real Slurm (tests/slurm/conftest.py), made runnable on its two 1-CPU nodes by one mechanical rewrite
(`local_line`):

- `VAR=value` before `sbatch` is set in sbatch's environment;
- a literal `...` among the options is an elision: it takes the options of the nearest full sbatch
  line above it in the same page (a line with nothing above to take them from is skipped, with the
  reason in its test id);
- `<jobid>` becomes a job id (`PLACEHOLDERS`); any other `<...>` fails the test;
- GPU requests (`--gpus-per-node`, `--gres`, ...) are dropped: the test nodes have no GPUs;
- `--cpus-per-task`, `--mem`, `--nodes` and `--ntasks-per-node` are capped to what the cluster's
  nodes offer (sinfo: 2 nodes of 1 CPU and 1 MB, slurm/testing/slurm.conf.template).

The rewritten line is submitted with `sbatch --test-only`, which parses every option and the
script's `#SBATCH` lines and checks that the cluster could run the job, without running it. The
line's script must be a batch script in the repository (sbatch needs a `#!` first line, not the
executable bit) and the config it names must exist. One line of the own-videos walkthrough
(docs/own_videos.md, "Submit to Slurm") also runs for real, on CPU (`train.sbatch --cpus`), with the
walkthrough's smoke-run overrides and 2 steps, on a folder of test videos made with ffmpeg as the
walkthrough makes them.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cluster import LocalSlurmCluster
from slurm_jobs import describe_job, job_info, sbatch
from test_doc_snippets import DOCS, ROOT, Block, command_lines, fenced_blocks, indented_blocks

from ganforge.checkpoint import load_checkpoint

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]

# Counted by hand: README.md 2 (own videos, Slurm), docs/own_videos.md 3 (submit, W&B online,
# resume), docs/slurm.md 3 (two nodes, array, CPU).
DOC_SBATCH_LINES = 8
SBATCH = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*sbatch\s")
PLACEHOLDERS = {"<jobid>": "4242"}
GPU_OPTIONS = ("--gpus-per-node", "--gpus-per-task", "--gpus", "--gres", "--gpu-bind", "--tres-per-task")
PROGS = ("vidgan", "t2i", "ganforge")


@dataclass(frozen=True)
class SbatchLine:
    """One documented sbatch command: its page, the page's line number, the text with `\\` joined."""

    doc: Path
    line: int
    text: str
    skip: str | None = None

    @property
    def name(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"

    @property
    def id(self) -> str:
        return f"{self.name} (skipped: {self.skip})" if self.skip else self.name


@dataclass(frozen=True)
class LocalLine:
    """A doc line rewritten for the test cluster: sbatch's environment, options, script and its arguments."""

    env: dict[str, str]
    options: list[str]
    script: str
    args: list[str]


def first_line(doc_lines: list[str], block: Block, command: str) -> int:
    """The 1-based line of `doc_lines`, at or after the block's, where the joined `command` starts."""
    for number in range(block.line, len(doc_lines) + 1):
        start = doc_lines[number - 1].strip().removesuffix("\\").strip()
        if start and command.startswith(start):
            return number
    raise AssertionError(f"{block.name}: `{command}` not found in the page")


def doc_sbatch_lines() -> list[SbatchLine]:
    """Every sbatch line of the documentation, in page order, its elisions filled in or marked skipped."""
    found = []
    for doc in DOCS:
        doc_lines = doc.read_text().splitlines()
        blocks = sorted(fenced_blocks(doc) + indented_blocks(doc), key=lambda b: b.line)
        page = [
            SbatchLine(doc, first_line(doc_lines, block, command), command)
            for block in blocks
            for command in command_lines(block)
            if SBATCH.match(command)
        ]
        for i, entry in enumerate(page):
            if "..." in shlex.split(entry.text, comments=True):
                full = [e for e in page[:i] if "..." not in shlex.split(e.text, comments=True)]
                if full:
                    options = " ".join(split_line(full[-1].text)[1])
                    text = entry.text.replace("...", options, 1)
                    entry = SbatchLine(doc, entry.line, text)
                else:
                    entry = SbatchLine(
                        doc, entry.line, entry.text, "elided options, no full sbatch line above"
                    )
            found.append(entry)
    return found


def split_line(text: str) -> tuple[dict[str, str], list[str], list[str]]:
    """(`VAR=value` environment, sbatch options, script and its arguments) of a shell sbatch line."""
    tokens = shlex.split(text, comments=True)
    env = {}
    while tokens and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", tokens[0]):
        key, _, value = tokens.pop(0).partition("=")
        env[key] = value
    assert tokens[:1] == ["sbatch"], f"`{text}` does not run sbatch"
    tokens = tokens[1:]
    split = next((i for i, token in enumerate(tokens) if not token.startswith("-") and token != "..."), None)
    assert split is not None, f"`{text}` names no batch script"
    return env, tokens[:split], tokens[split:]


@dataclass(frozen=True)
class NodeLimits:
    nodes: int
    cpus: int  # per node
    memory_mb: int  # per node


def node_limits(cluster: LocalSlurmCluster) -> NodeLimits:
    """Node count and the smallest node's CPUs and memory, as the running cluster reports them."""
    rows = [line.split() for line in cluster.run("sinfo", "-h", "-N", "-o", "%N %c %m").stdout.splitlines()]
    return NodeLimits(len(rows), min(int(r[1]) for r in rows), min(int(r[2]) for r in rows))


def capped(option: str, limits: NodeLimits, cpus_per_task: int) -> str:
    """`--opt=value` with the value lowered to what the test nodes offer (`--mem` in MB)."""
    name, _, value = option.partition("=")
    ceiling = {
        "--cpus-per-task": limits.cpus,
        "--nodes": limits.nodes,
        "--ntasks-per-node": max(1, limits.cpus // cpus_per_task),
    }
    if name in ceiling:
        return f"{name}={min(int(value), ceiling[name])}"
    if name == "--mem":
        return f"--mem={min(megabytes(value), limits.memory_mb)}M"
    return option


def megabytes(memory: str) -> int:
    """Slurm's `--mem` value (`64G`, `8000`, `512M`; a bare number is MB) in MB."""
    match = re.fullmatch(r"(\d+)([KMGT]?)", memory.upper())
    assert match, f"--mem={memory} is not a Slurm memory size"
    scale = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024**2}[match[2]]
    return max(1, int(int(match[1]) * scale))


def local_line(entry: SbatchLine, limits: NodeLimits) -> LocalLine:
    """The documented line made runnable on the test cluster (module docstring: the rewrite rules)."""

    def fill(token: str) -> str:
        for placeholder, value in PLACEHOLDERS.items():
            token = token.replace(placeholder, value)
        assert not re.search(r"<\w+>", token), f"{entry.name}: unknown placeholder in `{token}`"
        return token

    env, options, (script, *args) = split_line(entry.text)
    env = {key: fill(value) for key, value in env.items()}
    options, args = [fill(o) for o in options], [fill(a) for a in args]
    assert all(o.startswith("--") and "=" in o for o in options), (
        f"{entry.name}: write sbatch options as --name=value: {options}"
    )
    options = [o for o in options if o.partition("=")[0] not in GPU_OPTIONS]
    cpus = [int(o.partition("=")[2]) for o in options if o.startswith("--cpus-per-task=")]
    cpus_per_task = min(cpus[-1] if cpus else 1, limits.cpus)
    return LocalLine(env, [capped(o, limits, cpus_per_task) for o in options], script, args)


LINES = doc_sbatch_lines()


@pytest.fixture(scope="module")
def limits(slurm_cluster: LocalSlurmCluster) -> NodeLimits:
    return node_limits(slurm_cluster)


def test_the_docs_have_their_sbatch_lines():
    assert len(LINES) >= DOC_SBATCH_LINES, [e.name for e in LINES]
    assert not [e for e in LINES if e.skip], "an elided sbatch line has no full line above it to fill it"


def test_local_line_rewrites_a_gpu_line_for_the_test_nodes():
    doc = ROOT / "docs" / "own_videos.md"
    text = (
        "GANFORGE_RUN_ID=<jobid> sbatch --nodes=4 --gpus-per-node=4 --ntasks-per-node=4 --cpus-per-task=9 "
        "--mem=64G --time=1:00:00 slurm/train.sbatch vidgan configs/vidgan/own_videos_64.yaml --x <jobid>"
    )
    local = local_line(SbatchLine(doc, 1, text), NodeLimits(nodes=2, cpus=1, memory_mb=1))
    assert local == LocalLine(
        {"GANFORGE_RUN_ID": "4242"},
        ["--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=1", "--mem=1M", "--time=1:00:00"],
        "slurm/train.sbatch",
        ["vidgan", "configs/vidgan/own_videos_64.yaml", "--x", "4242"],
    )


def check_script_and_config(entry: SbatchLine, local: LocalLine) -> None:
    """The script is a batch script of the repository; PROG is a ganforge program; the config exists."""
    script = ROOT / local.script
    assert script.is_file(), f"{entry.name}: no batch script {local.script}"
    assert script.read_text().startswith("#!"), (
        f"{entry.name}: {local.script} has no #! line, sbatch refuses it"
    )
    args = local.args[1:] if local.args[:1] == ["--cpus"] else local.args
    assert len(args) >= 2 and args[0] in PROGS, f"{entry.name}: `{local.script} {shlex.join(local.args)}`"
    if script.name == "sweep.sbatch":
        return  # its second argument is the reader's own sweep list (docs/slurm.md, "Sweeps")
    assert (ROOT / args[1]).is_file(), f"{entry.name}: no config {args[1]} in the repository"


@pytest.mark.parametrize("entry", LINES, ids=[e.id for e in LINES])
def test_doc_sbatch_line_is_accepted_by_slurm(entry: SbatchLine, slurm_cluster, limits, tmp_path):
    if entry.skip:
        pytest.skip(entry.skip)
    local = local_line(entry, limits)
    check_script_and_config(entry, local)
    res = sbatch(
        slurm_cluster, tmp_path, ["--test-only", *local.options], [local.script, *local.args], env=local.env
    )
    submitted = shlex.join(["sbatch", "--test-only", *local.options, local.script, *local.args])
    assert res.returncode == 0 and "to start at" in res.stderr, (
        f"{entry.name}: `{entry.text}`\nsubmitted as `{submitted}`\n"
        f"sbatch exited {res.returncode}: {res.stderr}"
    )


# ---------------------------------------------------------------------------------- one real run
# The overrides of the walkthrough's CPU smoke run (docs/own_videos.md, step 4), 2 steps, and no
# sanity validation, so the job takes seconds.
SMOKE_OVERRIDES = [
    "--model.init_args.patch_size=4",
    "--model.init_args.g_widths=[16, 8]",
    "--model.init_args.d_widths=[8, 16, 16]",
    "--data.batch_size=2",
    "--data.num_workers=0",
    "--data.pin_memory=false",
    "--trainer.max_steps=2",
    "--trainer.num_sanity_val_steps=0",
    "--trainer.enable_progress_bar=false",
]
SMOKE_STEPS = 2


def write_test_videos(root: Path) -> Path:
    """train/ (2 clips), val/ (1 clip): 2 s 64x64 ffmpeg test patterns, as the walkthrough's step 4 makes."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed: run `make apt`")
    for split, source, count in (("train", "testsrc2", 2), ("val", "mandelbrot", 1)):
        (root / split).mkdir(parents=True)
        for i in range(count):
            pattern = f"{source}=size=64x64:rate=10"
            cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", pattern, "-ss", str(i), "-t", "2"]
            subprocess.run([*cmd, "-pix_fmt", "yuv420p", str(root / split / f"clip{i}.mp4")], check=True)
    return root


def own_videos_submit_line() -> SbatchLine:
    """The walkthrough's first sbatch line (step 5, one GPU)."""
    return next(e for e in LINES if e.doc.name == "own_videos.md" and not e.skip)


@pytest.mark.slow
def test_the_own_videos_sbatch_line_trains_on_cpu(slurm_cluster, limits, tmp_path):
    entry = own_videos_submit_line()
    local = local_line(entry, limits)
    assert local.script == "slurm/train.sbatch" and "--data.data_dir" in local.args, entry.text
    videos = write_test_videos(tmp_path / "my_videos")
    args = list(local.args)
    args[args.index("--data.data_dir") + 1] = str(videos)
    runs = tmp_path / "runs"
    res = sbatch(
        slurm_cluster,
        runs,
        ["--wait", *local.options],
        [local.script, "--cpus", *args, *SMOKE_OVERRIDES],
        timeout=240,
        env=local.env,
    )
    details = describe_job(slurm_cluster, runs)
    assert res.returncode == 0, f"sbatch --wait exited {res.returncode}: {res.stderr}\n{details}"
    job_id = re.search(r"Submitted batch job (\d+)", res.stdout)[1]
    info = job_info(slurm_cluster, job_id)
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0"), details
    last = runs / job_id / "checkpoints" / "last.ckpt"
    assert last.is_file(), details
    assert load_checkpoint(last)["global_step"] == SMOKE_STEPS
