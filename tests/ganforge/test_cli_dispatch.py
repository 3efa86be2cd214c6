"""`ganforge.cli.dispatch`: one table per command, lazy imports, one-line errors, and old flag spellings."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from dataclasses import dataclass

import pytest

from ganforge.cli import alias, dispatch, parse_options
from ganforge.errors import UserError

PROBE = """
import json, sys
from importlib import import_module
module, argv = sys.argv[1], sys.argv[2:]
try:
    code = import_module(module).main(argv)
except SystemExit as stop:
    code = stop.code
loaded = [m for m in ("pytorch_lightning", "lightning") if m in sys.modules]
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def probe(module: str, *argv: str) -> dict:
    """`module.main(argv)` in a fresh interpreter: its exit code and the Lightning packages it loaded."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, module, *argv], capture_output=True, text=True, timeout=120
    )
    return json.loads(proc.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "argv",
    [
        ["vidgan.cli", "--help"],
        ["vidgan.cli", "data", "--help"],
        ["vidgan.cli", "data", "moving-mnist", "--help"],
        ["t2i.cli", "--help"],
        ["t2i.cli", "data", "shapes", "--help"],
        ["ganforge.cli", "--help"],
    ],
)
def test_help_does_not_load_lightning(argv):
    assert probe(*argv) == {"code": 0, "loaded": []}


def test_data_commands_do_not_load_lightning(tmp_path):
    shapes = ["t2i.cli", "data", "shapes", "--out", str(tmp_path / "shapes"), "--train", "2", "--val", "1"]
    assert probe(*shapes, "--size", "32") == {"code": 0, "loaded": []}
    assert (tmp_path / "shapes" / "annotations").is_dir()
    mnist = ["vidgan.cli", "data", "moving-mnist", "--out", str(tmp_path / "mnist"), "--train", "2"]
    assert probe(*mnist, "--test", "1", "--frames", "3", "--size", "32", "--quiet") == {
        "code": 0,
        "loaded": [],
    }


# ---------------------------------------------------------------------------------- dispatch itself
@pytest.fixture
def commands(monkeypatch):
    """A table of fake commands; `missing` names a module that does not exist (never imported)."""
    calls: list[list[str]] = []
    module = types.ModuleType("dispatch_testing")
    module.ok = lambda argv: calls.append(argv)  # returns None: exit code 0
    module.seven = lambda argv: 7
    module.bad = lambda argv: check_positive(-1)  # a user error (UserError)
    module.bug = lambda argv: int("x")  # a programming error (plain ValueError)
    module.typo = lambda argv: len(3)  # a programming error (TypeError)
    module.fit = lambda argv: calls.append(argv) or 3
    monkeypatch.setitem(sys.modules, "dispatch_testing", module)
    table = {
        "ok": ("dispatch_testing:ok", "the ok command"),
        "seven": "dispatch_testing:seven",
        "bad": "dispatch_testing:bad",
        "bug": "dispatch_testing:bug",
        "typo": "dispatch_testing:typo",
        "missing": ("no_such_module_here:main", "never imported unless run"),
    }
    return table, calls


def test_runs_the_chosen_function_with_the_arguments_after_the_command(commands):
    table, calls = commands
    assert dispatch("prog", table, ["ok", "--x", "1"]) == 0 and calls == [["--x", "1"]]
    assert dispatch("prog", table, ["seven"]) == 7


def test_lightning_commands_get_the_whole_argv(commands):
    table, calls = commands
    assert dispatch("prog", table, ["fit", "--config", "c.yaml"], lightning="dispatch_testing:fit") == 3
    assert calls == [["fit", "--config", "c.yaml"]]


def check_positive(steps: int) -> None:
    if steps < 1:
        raise UserError(f"--steps={steps} must be >= 1\nsecond line")


def test_user_errors_are_one_line(commands, capsys):
    assert dispatch("prog", commands[0], ["bad"]) == 1
    assert capsys.readouterr().err.strip() == "prog: error: --steps=-1 must be >= 1"


@pytest.mark.parametrize(("command", "error"), [("bug", ValueError), ("typo", TypeError)])
def test_programming_errors_keep_their_traceback(commands, capsys, command, error):
    with pytest.raises(error) as raised:
        dispatch("prog", commands[0], [command])
    assert not isinstance(raised.value, UserError) and capsys.readouterr().err == ""


CRASH = """
import sys, types
from ganforge.cli import dispatch
from ganforge.errors import UserError
module = types.ModuleType("crash_testing")
def bad(argv):
    raise UserError("--steps=0 must be >= 1")
module.bad, module.bug = bad, lambda argv: int("x")
sys.modules["crash_testing"] = module
sys.exit(dispatch("prog", {"bad": "crash_testing:bad", "bug": "crash_testing:bug"}, sys.argv[1:]))
"""


def test_a_programming_error_prints_its_traceback_and_a_user_error_one_line():
    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", CRASH, command], capture_output=True, text=True, timeout=120
        )

    bug, bad = run("bug"), run("bad")
    assert bug.returncode == 1 and "Traceback (most recent call last)" in bug.stderr
    assert bug.stderr.strip().endswith("ValueError: invalid literal for int() with base 10: 'x'")
    assert "prog: error" not in bug.stderr
    assert (bad.returncode, bad.stderr) == (1, "prog: error: --steps=0 must be >= 1\n")


def test_help_lists_every_command_and_unknown_commands_are_usage_errors(commands, capsys):
    table, _ = commands
    with pytest.raises(SystemExit) as stop:
        dispatch("prog", table, ["--help"], lightning="dispatch_testing:fit")
    out = capsys.readouterr().out
    assert stop.value.code == 0 and "the ok command" in out and "never imported unless run" in out
    assert all(name in out for name in ("fit", "validate", "test", "seven", "bad", "bug"))
    with pytest.raises(SystemExit) as stop:
        dispatch("prog", table, ["frobnicate"])
    assert stop.value.code == 2 and "invalid choice: 'frobnicate'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- typed options, aliases
@dataclass(frozen=True)
class Options:
    ckpt_path: str
    seed: int = 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prog")
    alias(p, "--ckpt_path", "--ckpt", required=True, help="a checkpoint")
    p.add_argument("--seed", type=int, default=0)
    return p


def test_old_spelling_parses_but_help_and_errors_show_the_new_one(capsys):
    assert parse_options(parser(), Options, ["--ckpt", "a.ckpt"]) == Options("a.ckpt", 0)
    assert parse_options(parser(), Options, ["--ckpt_path", "b.ckpt", "--seed", "2"]) == Options("b.ckpt", 2)
    help_text = parser().format_help()
    assert "--ckpt_path CKPT_PATH" in help_text and "--ckpt " not in help_text
    with pytest.raises(SystemExit):
        parser().parse_args([])
    assert "the following arguments are required: --ckpt_path" in capsys.readouterr().err


@pytest.mark.parametrize(
    "build",
    [
        "vidgan.commands.predict",
        "vidgan.commands.evaluate",
        "t2i.commands.generate",
        "t2i.commands.evaluate",
        "t2i.commands.export_clip",
    ],
)
def test_every_checkpoint_flag_is_ckpt_path_with_the_old_alias(build):
    from importlib import import_module

    parser = import_module(build).build_parser()
    assert "--ckpt_path" in parser.format_help() and "--ckpt " not in parser.format_help()
    assert parser._option_string_actions["--ckpt"].dest == "ckpt_path"
