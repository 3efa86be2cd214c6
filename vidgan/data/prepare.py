"""What the `vidgan data` preparation commands share: atomic outputs and a summary of what happened.

Every output is written under a temporary name and renamed into place when complete, so an
output that exists is complete: a resumed run skips it. Inputs that fail are skipped, counted and
listed with their reasons in the command's summary json.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield `path` + ".partial" to write; rename it to `path` on success, delete it on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def reason_kind(reason: str) -> str:
    """A reason's leading words, up to the first ':' or '(' (what the summary counts by)."""
    return reason.split(":", 1)[0].split("(", 1)[0].strip()


@dataclass
class PrepareSummary:
    """Counts of one preparation run: outputs written, already complete (skipped), and failed inputs."""

    command: str
    settings: dict
    written: int = 0
    already_done: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # input -> reason

    def fail(self, name: str, reason: str) -> None:
        self.failures[name] = reason

    def to_json(self) -> dict:
        return {
            "command": self.command,
            "settings": self.settings,
            "written": self.written,
            "already_done": self.already_done,
            "failed": len(self.failures),
            "failed_by_reason": dict(Counter(map(reason_kind, self.failures.values())).most_common()),
            "failures": dict(sorted(self.failures.items())),
        }

    def write(self, path: Path) -> Path:
        """Write the summary json (atomically) and return its path."""
        with atomic_output(path) as partial:
            partial.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    def line(self) -> str:
        """One line for the terminal: `written N, already done N, failed N`."""
        return f"written {self.written}, already done {self.already_done}, failed {len(self.failures)}"
