"""Split lists as UCF-101 and Kinetics tools write them: one `class/video.ext [label]` per line.

Paths may contain spaces and `#` (Kinetics class folders are "air drumming", "playing guitar").
A line's last whitespace-separated field is its label only when it is an integer; everything
before it is the path. Only lines that start with `#` are comments; blank lines are ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class SplitLine(NamedTuple):
    """One listed video: its path as written, its integer label (None without one) and line number."""

    path: str
    label: int | None
    number: int


def _is_integer(field: str) -> bool:
    return field.lstrip("+-").isdigit()


def read_split_lines(split_file: str | Path) -> list[SplitLine]:
    """The videos a split list names, in file order (see the module docstring for the line format)."""
    split_file = Path(split_file)
    if not split_file.is_file():
        raise FileNotFoundError(f"vidgan.data: split_file '{split_file}' does not exist")
    lines = []
    for number, raw in enumerate(split_file.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.rsplit(maxsplit=1)
        if len(fields) == 2 and _is_integer(fields[1]):
            lines.append(SplitLine(fields[0].rstrip(), int(fields[1]), number))
        else:
            lines.append(SplitLine(line, None, number))
    return lines


def read_split_file(split_file: str | Path, root: str | Path) -> list[Path]:
    """Video paths of a split list, relative paths resolved against `root` (labels are not used)."""
    return [
        path if path.is_absolute() else Path(root) / path
        for path in (Path(line.path) for line in read_split_lines(split_file))
    ]
