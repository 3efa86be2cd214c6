"""Every snippet in README.md and docs/*.md runs or parses, so the documentation cannot drift from the code.

Python: every ```python block runs in a fresh namespace, from a folder that holds
what the documented commands would have left there: tiny trained vidgan checkpoints where `vidgan
fit` writes them, Moving MNIST test data, tiny t2i stages. A line `print(...)  # text` must print
`text`. A block that cannot run on CPU is marked in the Markdown by a comment on the line before its
fence, with the reason: `<!-- snippet: skip (needs a GPU) -->`.

Shell: every `vidgan`, `t2i` and `ganforge` command line (in code blocks, after `$ ` prompts, and
the command that `sbatch ... slurm/train.sbatch [--cpus] PROG CONFIG ...` runs) is parsed without
running: `fit`, `validate` and `test` lines resolve their config and overrides with `--print_config`;
the other subcommands go through their own argparse parser (flags, values, required arguments).
Inline code spans that start with a command must name an existing subcommand and existing flags.

Links: every relative link of those files names an existing file, and an existing heading when it has an
anchor.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path += [str(ROOT / "tests" / "vidgan"), str(ROOT / "tests" / "t2i")]  # their test helpers, last

from fixtures_eval import tiny_checkpoint  # noqa: E402
from image_testing import CLASSES, TEXT, TINY_IMAGE, save_stage, save_tiny_layout_stage  # noqa: E402

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROGS = ("vidgan", "t2i", "ganforge")
LIGHTNING = ("fit", "validate", "test")
SKIP_MARK = re.compile(r"<!--\s*snippet:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")
PROMISE = re.compile(r"^print\(.*\)  # (.*)$", flags=re.MULTILINE)


# ---------------------------------------------------------------------------------- extraction
@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    skip: str | None  # the reason given by a `<!-- snippet: skip (...) -->` line before the fence

    @property
    def name(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def fenced_blocks(doc: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file (fences may be indented, as inside list items)."""
    lines = doc.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, start = len(opening["indent"]), i
        body = []
        i += 1
        while i < len(lines) and not FENCE.match(lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        before = [line for line in lines[:start] if line.strip()][-1:]
        mark = SKIP_MARK.search(before[0]) if before else None
        blocks.append(
            Block(doc, start + 1, opening["lang"], "\n".join(body), mark["reason"] if mark else None)
        )
        i += 1
    return blocks


def indented_blocks(doc: Path) -> list[Block]:
    """Code indented by 4 spaces after a blank line, outside fences (the slurm and W&B pages use them)."""
    lines = doc.read_text().splitlines()
    fenced = {n for b in fenced_blocks(doc) for n in range(b.line, b.line + b.text.count("\n") + 2)}
    blocks, i = [], 0
    while i < len(lines):
        if (i + 1) not in fenced and lines[i].startswith("    ") and i > 0 and not lines[i - 1].strip():
            start = i
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                i += 1
            blocks.append(Block(doc, start + 1, "", "\n".join(line[4:] for line in lines[start:i]), None))
        i += 1
    return blocks


PYTHON = [b for doc in DOCS for b in fenced_blocks(doc) if b.lang == "python"]


def command_lines(block: Block) -> list[str]:
    """Shell lines of a block, continuation lines joined; in `text` blocks only the `$ ` prompt lines."""
    if block.lang not in ("", "bash", "sh", "shell", "console", "text"):
        return []
    joined, current = [], ""
    for raw in block.text.splitlines():
        line = raw.rstrip()
        if block.lang in ("text", "console") and not current:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        current += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            joined.append(current.strip())
            current = ""
    return [line for line in joined if line]


def as_command(line: str) -> list[str] | None:
    """The `PROG SUBCOMMAND ...` argv a shell line runs, or None when it runs no documented command."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        return None
    while tokens and (re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", tokens[0]) or tokens[0] in ("$", "time")):
        tokens = tokens[1:]
    if tokens and tokens[0] in PROGS:
        return tokens
    if tokens and tokens[0] == "sbatch" and "slurm/train.sbatch" in tokens:
        rest = tokens[tokens.index("slurm/train.sbatch") + 1 :]
        rest = rest[1:] if rest[:1] == ["--cpus"] else rest
        if len(rest) >= 2 and rest[0] in PROGS:
            return [rest[0], "fit", "--config", rest[1], *rest[2:]]
    return None


COMMANDS = sorted(
    {
        (str(b.doc.relative_to(ROOT)), tuple(argv))
        for doc in DOCS
        for b in fenced_blocks(doc) + indented_blocks(doc)
        for line in command_lines(b)
        if (argv := as_command(line)) is not None
    }
)
INLINE = sorted(
    {
        (str(doc.relative_to(ROOT)), " ".join(span.split()))
        for doc in DOCS
        for span in re.findall(r"(?<!`)`((?:vidgan|t2i|ganforge) [^`]+)`(?!`)", doc.read_text())
    }
)


# ---------------------------------------------------------------------------------- parsers
def prog_main(prog: str) -> Callable[[list[str]], int]:
    """The console script's entry point, `main(argv)`."""
    if prog == "vidgan":
        from vidgan.cli import main
    elif prog == "t2i":
        from t2i.cli import main
    else:
        from ganforge.cli import main
    return main


def print_config(argv: list[str]) -> None:
    """`PROG fit|validate|test ... --print_config` in this process: the config and overrides resolve."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = prog_main(argv[0])([*argv[1:], "--print_config"])
    except SystemExit as stop:  # LightningCLI exits after printing the config
        code = stop.code or 0
    command = shlex.join(argv)
    assert code == 0, f"`{command} --print_config` failed (exit {code}):\n{err.getvalue()[-2000:]}"
    assert "model:" in out.getvalue(), f"`{command} --print_config` printed no config"


class _Parsed(BaseException):
    """Raised from the patched `parse_args`: the command has its parser (and parsed argv); stop it there."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__(parser.prog)
        self.parser = parser


def command_parser(argv: list[str], parse: bool) -> argparse.ArgumentParser:
    """Run `PROG SUB ...` through its public `main` until its argparse parser is reached, and return it.

    With `parse`, argv is parsed first (unknown flags, bad values and missing required arguments fail
    the test); the command itself never runs.
    """
    original = argparse.ArgumentParser.parse_args

    def stop(self: argparse.ArgumentParser, args=None, namespace=None):
        if parse:
            original(self, args, namespace)
        raise _Parsed(self)

    err = io.StringIO()
    code = None
    with mock.patch.object(argparse.ArgumentParser, "parse_args", stop):
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                code = prog_main(argv[0])(argv[1:])
        except _Parsed as parsed:
            return parsed.parser
        except SystemExit as exit_:
            code = exit_.code
    pytest.fail(f"`{shlex.join(argv)}` does not parse (exit {code}):\n{err.getvalue()[-2000:]}")


def parser_words(parser: argparse.ArgumentParser) -> tuple[set[str], set[str]]:
    """(option strings, subcommand names) of a parser and every subparser below it.

    Option strings come from the parser's lookup table, so hidden old spellings of a flag count too.
    """
    options, names = set(parser._option_string_actions), set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                names.add(name)
                sub_options, sub_names = parser_words(sub)
                options |= sub_options
                names |= sub_names
    return options, names


# ---------------------------------------------------------------------------------- workspace
def own_videos_checkpoint(path: Path) -> Path:
    """One generator step of own_videos_64.yaml's networks with the smoke run's CPU overrides
    (5 -> 11 frames, 3 channels, 64 px on 4x4 patches), saved as `vidgan fit` saves it."""
    from vidgan.module import VideoGAN

    torch.manual_seed(0)
    module = VideoGAN(
        context_frames=5, future_frames=11, channels=3, resolution=64, patch_size=4, g_widths=[16, 8],
        latent_dim=8, d_widths=[8, 16, 16], spatial_frames=4,
    )  # fmt: skip
    clips = torch.rand(2, 16, 3, 64, 64)
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=path.parent,
    )  # fmt: skip
    trainer.fit(module, DataLoader(TensorDataset(clips[:, :5], clips[:, 5:]), batch_size=2))
    path.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the documented commands leave behind, at the paths the snippets name."""
    from t2i.image_stage import ImageGAN
    from vidgan.data import write_moving_mnist

    folder = tmp_path_factory.mktemp("docs")
    tiny_checkpoint(folder / "runs" / "vidgan" / "moving_mnist_tiny" / "checkpoints" / "last.ckpt")
    write_moving_mnist(folder / "data" / "mnist", train=1, test=8, frames=20, size=64, digits=1)
    own_videos_checkpoint(folder / "runs" / "vidgan" / "own_videos_smoke" / "checkpoints" / "last.ckpt")
    stage = folder / "runs" / "t2i" / "shapes_image" / "checkpoints"
    stage.mkdir(parents=True)
    torch.manual_seed(0)
    save_tiny_layout_stage(stage / "layout.ckpt")  # an untrained tiny layout + image stage: the API runs
    image = ImageGAN(CLASSES, **TINY_IMAGE, layout_checkpoint="layout.ckpt", **TEXT)
    save_stage(image, stage / "last.ckpt")
    return folder


# ---------------------------------------------------------------------------------- tests
def test_the_docs_have_snippets_and_commands():
    assert len(PYTHON) >= 8 and len(COMMANDS) >= 40 and len(INLINE) >= 20
    skipped = [b for b in PYTHON if b.skip]
    assert len(skipped) <= 2, f"skips must be rare: {[b.name for b in skipped]}"


def run_snippet(name: str, code: str, workspace: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(workspace)
    with torch.random.fork_rng():
        exec(compile(code, name, "exec"), {"__name__": "__main__"})  # noqa: S102
    printed = capsys.readouterr().out.strip().splitlines()
    promised = PROMISE.findall(code)
    if promised:
        assert printed == promised, f"{name} printed {printed}, its comments say {promised}"


@pytest.mark.parametrize("block", PYTHON, ids=[b.name for b in PYTHON])
def test_python_snippet_runs(block: Block, workspace: Path, monkeypatch, capsys):
    if block.skip:
        pytest.skip(f"{block.name}: {block.skip}")
    run_snippet(block.name, block.text, workspace, monkeypatch, capsys)


@pytest.mark.parametrize("doc, argv", COMMANDS, ids=[f"{d}: {shlex.join(a)[:70]}" for d, a in COMMANDS])
def test_command_line_parses(doc: str, argv: tuple[str, ...], monkeypatch):
    monkeypatch.chdir(ROOT)  # configs are named relative to the repository root
    argv, command = list(argv), shlex.join(argv)
    assert len(argv) >= 2, f"{doc}: `{command}` names no subcommand"
    if argv[1] in LIGHTNING:
        config = argv[argv.index("--config") + 1] if "--config" in argv else None
        assert config is None or (ROOT / config).is_file(), f"{doc}: `{command}`: no config '{config}'"
        print_config(argv)
    else:
        command_parser(argv, parse=True)


@pytest.mark.parametrize("doc, span", INLINE, ids=[f"{d}: {s[:70]}" for d, s in INLINE])
def test_inline_command_names_real_subcommands_and_flags(doc: str, span: str, monkeypatch):
    monkeypatch.chdir(ROOT)
    words = span.replace("[", " ").replace("]", " ").split()
    prog, sub = words[0], words[1] if len(words) > 1 else None
    if sub is None or sub.startswith("-") or sub.isupper():  # `vidgan COMMAND --help`, `t2i --help`
        return
    if sub in LIGHTNING:
        config = words[words.index("--config") + 1] if "--config" in words else None
        if config is not None and config.endswith(".yaml") and "X" not in Path(config).stem:
            print_config(shlex.split(span))  # a whole fit command: it must resolve
        return
    parser = command_parser([prog, sub], parse=False)
    options, names = parser_words(parser)
    assert sub in parser.prog.split() or sub in names, f"{doc}: `{span}`: `{prog} {sub}` is no subcommand"
    thing = words[2] if len(words) > 2 and not words[2].startswith("-") else None
    if thing is not None and names:  # `vidgan data index ...`: the dataset command exists
        assert thing in names, f"{doc}: `{span}`: `{prog} {sub} {thing}` is no subcommand"
    flags = {w.split("=")[0].split("|")[0] for w in words[2:] if w.startswith("--")}
    unknown = sorted(flags - options)
    assert not unknown, f"{doc}: `{span}` uses flags that `{prog} {sub}` does not have: {unknown}"


def test_the_skip_mark_is_read_from_the_line_before_the_fence(tmp_path: Path):
    doc = tmp_path / "page.md"
    doc.write_text(
        "Text.\n\n<!-- snippet: skip (needs a GPU) -->\n\n```python\nprint(1)\n```\n\n```python\nx = 1\n```\n"
    )
    marked, plain = fenced_blocks(doc)
    assert (marked.skip, marked.text, plain.skip) == ("needs a GPU", "print(1)", None)


def heading_anchors(doc: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (lower case, punctuation dropped, spaces to -)."""
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.DOTALL)
    headings = re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_relative_links_and_anchors_resolve(doc: Path):
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.DOTALL)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in heading_anchors(file):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{doc.relative_to(ROOT)}: broken links {broken}"
