"""User-facing errors and the one-line error guard every command uses (imports nothing heavy)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the reason."""


class NotGANForgeCheckpointError(CheckpointError):
    """A readable torch file without the ganforge header (a plain state dict, another library's file)."""


class WrongFamilyError(CheckpointError):
    """A ganforge checkpoint of another family (e.g. a t2i checkpoint given to vidgan)."""


class NonFiniteLossError(RuntimeError):
    """Raised after `max_consecutive_nonfinite` non-finite losses in a row."""


USER_ERRORS = (
    ValueError,
    TypeError,
    FileNotFoundError,
    NotADirectoryError,
    CheckpointError,
    NonFiniteLossError,
)


def one_line(err: BaseException) -> str:
    """The first non-empty line of an exception message."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def run_guarded(prog: str, fn: Callable[[], Any]) -> int:
    """Run `fn`; turn user-input errors into a one-line message and exit code 1 (2 for usage).

    Set GANFORGE_DEBUG=1 to get the traceback instead.
    """
    from jsonargparse import ArgumentError

    try:
        fn()
    except ArgumentError as err:
        detail = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        print(f"{prog}: error: {detail[:400]}", file=sys.stderr)
        return 2
    except USER_ERRORS as err:
        if os.environ.get("GANFORGE_DEBUG"):
            raise
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        return 1
    return 0
