"""User-facing errors and the one-line error guard every command uses (imports nothing heavy).

Raise `UserError` for bad input (a config value, a flag, a file, a caption, a data folder, a
checkpoint's contents): the guard prints it as one line. Any other exception, a plain ValueError or
TypeError included, is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any


class UserError(ValueError):
    """Bad input from the user; commands print its message as one line, without a traceback.

    A ValueError, so `except ValueError` and `pytest.raises(ValueError)` keep catching it.
    """


class UserTypeError(UserError, TypeError):
    """Bad input of the wrong type (e.g. a list where an array is expected); also a TypeError."""


class CheckpointError(UserError):
    """A checkpoint file that cannot be used; the message names the file and the reason."""


class NotGANForgeCheckpointError(CheckpointError):
    """A readable torch file without the ganforge header (a plain state dict, another library's file)."""


class WrongFamilyError(CheckpointError):
    """A ganforge checkpoint of another family (e.g. a t2i checkpoint given to vidgan)."""


class NonFiniteLossError(RuntimeError):
    """Raised after `max_consecutive_nonfinite` non-finite losses in a row."""


USER_ERRORS = (
    UserError,  # CheckpointError included
    FileNotFoundError,
    NotADirectoryError,
    FileExistsError,  # e.g. --out under a path that is a regular file
    IsADirectoryError,
    PermissionError,
    NonFiniteLossError,
)


UNION_ERROR = "Does not validate against any of the Union subtypes"


def one_line(err: BaseException) -> str:
    """The first non-empty line of an exception message."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def caused_by_user(err: BaseException) -> bool:
    """Whether `err` or an exception it was raised from (`__cause__`, `__context__`) is a user error.

    jsonargparse re-raises an error of a class's `__init__` as its own ValueError chained to it.
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, USER_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def union_cause(err: BaseException, sections: Mapping[str, type]) -> str | None:
    """The real cause inside jsonargparse's "Does not validate against any of the Union subtypes".

    In LightningCLI's subclass mode the model and data types are `X | None`, so an error raised by
    a class's `__init__` arrives wrapped: "... Subtypes: [<class 'X'>, <class 'NoneType'>] Errors:
    - <cause> - Expected a <class 'NoneType'> ...". Returns "<section>: <cause>", the section being
    the key of `sections` (e.g. {"model": VideoPredictionModule, "data": VideoDataModule}) whose
    class the message lists (unless the cause already starts with it), or the bare cause; None when
    `err` is not such an error.
    """
    text = str(err)
    if not text.startswith(UNION_ERROR):
        return None
    causes = [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("- ")]
    causes = [c for c in causes if not c.startswith("Expected a <class 'NoneType'>")]
    if not causes:
        return None
    subtypes = next((line for line in text.splitlines() if line.startswith("Subtypes:")), "")
    for section, cls in sections.items():
        if f"<class '{cls.__module__}.{cls.__qualname__}'>" in subtypes:
            prefix = f"{section}: "
            return causes[0] if causes[0].startswith(prefix) else prefix + causes[0]
    return causes[0]


def run_guarded(prog: str, fn: Callable[[], Any]) -> int:
    """Run `fn`; turn user-input errors into a one-line message and exit code 1 (2 for usage).

    User errors are `USER_ERRORS` (`UserError`, the OS file errors, `NonFiniteLossError`); any other
    exception propagates with its traceback. Set GANFORGE_DEBUG=1 to get the traceback of user
    errors too.
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
