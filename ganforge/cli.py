"""The one command dispatcher of `ganforge`, `vidgan` and `t2i`, and the `ganforge` command itself.

Each command is a table `{subcommand: ("module:function", help line)}` given to `dispatch`, which
imports only the module of the subcommand that runs: `PROG --help` and commands that need no
Lightning (`vidgan data`, `t2i data`, ...) start without loading it. `fit | validate | test` go to
the family's LightningCLI runner (`ganforge.lightning_cli`). Every command exits non-zero with a
one-line `prog: error: ...` message for bad input (set GANFORGE_DEBUG=1 to see the traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ganforge.errors import run_guarded

Options = TypeVar("Options")
LIGHTNING_COMMANDS = ("fit", "validate", "test")
LIGHTNING_HELP = {
    "fit": "train a model (LightningCLI: {prog} fit --config CONFIG.yaml; {prog} fit --help)",
    "validate": "validate a checkpoint (LightningCLI)",
    "test": "test a checkpoint (LightningCLI)",
    "predict": "predict with a checkpoint (LightningCLI)",
}


def dispatch(
    prog: str,
    commands: Mapping[str, str | tuple[str, str]],
    argv: Sequence[str] | None = None,
    *,
    description: str = "",
    lightning: str | None = None,
    lightning_commands: Sequence[str] = LIGHTNING_COMMANDS,
) -> int:
    """Run the subcommand `argv[0]` of `prog`; returns the exit code.

    `commands` maps a subcommand to `"module:function"` or `("module:function", help line)`; the
    function gets the arguments after the subcommand and returns an exit code (None for 0). With
    `lightning` (`"module:function"`), each of `lightning_commands` goes to that function with the
    whole argv (`fit --config ...`), as LightningCLI parses it. Only the chosen module is imported.
    Without a known subcommand, argparse prints the help listing them all, or a usage error.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and lightning is not None and argv[0] in lightning_commands:
        return _call(prog, lightning, argv)
    if argv and argv[0] in commands:
        return _call(prog, _target(commands[argv[0]]), argv[1:])
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listed = {name: LIGHTNING_HELP[name].format(prog=prog) for name in lightning_commands if lightning}
    listed |= {name: "" if isinstance(entry, str) else entry[1] for name, entry in commands.items()}
    for name, text in listed.items():
        sub.add_parser(name, help=text, add_help=False)
    parser.parse_args(argv)  # prints the help (exit 0) or a usage error naming the command (exit 2)
    return 2


def _target(entry: str | tuple[str, str]) -> str:
    return entry if isinstance(entry, str) else entry[0]


def _call(prog: str, target: str, argv: list[str]) -> int:
    """Import `module:function` and run it on argv under the one-line error guard."""
    module, _, name = target.partition(":")
    function: Callable[[list[str]], int | None] = getattr(importlib.import_module(module), name)
    codes: list[int | None] = []
    guarded = run_guarded(prog, lambda: codes.append(function(argv)))
    return guarded if guarded or not codes else codes[0] or 0


def parse_options(parser: argparse.ArgumentParser, options: type[Options], argv: Sequence[str]) -> Options:
    """Parse argv once into the dataclass `options`, whose fields are the parser's destinations."""
    return options_from(options, vars(parser.parse_args(argv)))


def options_from(options: type[Options], values: Mapping[str, Any]) -> Options:
    """The dataclass `options` from parsed values (keys that are not its fields are left out)."""
    names = {field.name for field in dataclasses.fields(options)}
    return options(**{name: value for name, value in values.items() if name in names})


def alias(parser: argparse.ArgumentParser, name: str, old: str, **kwargs: Any) -> argparse.Action:
    """Option `name` that also accepts the old spelling `old`; help and usage show only `name`."""
    action = parser.add_argument(name, old, **kwargs)
    action.option_strings.remove(old)  # still parsed (the parser maps the string), not shown in --help
    return action


# ---------------------------------------------------------------------- the `ganforge` command
COMMANDS = {
    "ring": ("ganforge.examples.ring_cli:main", "train the 8-Gaussians ring toy GAN through the core")
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ganforge` console script; returns the exit code."""
    return dispatch(
        "ganforge",
        COMMANDS,
        argv,
        description="ganforge core utilities. `ganforge fit --config configs/ganforge/ring.yaml` trains the "
        "ring GAN through LightningCLI (see `ganforge fit --help`).",
        lightning="ganforge.examples.ring_cli:lightning_main",
        lightning_commands=(*LIGHTNING_COMMANDS, "predict"),
    )


if __name__ == "__main__":
    sys.exit(main())
