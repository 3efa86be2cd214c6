"""Read an offline W&B run back from its `.wandb` transaction log, without a server or `wandb sync`.

wandb 0.31 ships no Python reader, so this follows the file format directly: a 7-byte file header
(`:W&B`, a 2-byte magic, a version byte), then LevelDB-log framing -- 32 KiB blocks of records
with a 7-byte header (crc32c: 4 bytes, length: 2 bytes little-endian, type: 1 byte; types FULL=1,
FIRST=2, MIDDLE=3, LAST=4; a block tail shorter than a header is zero padding). Each reassembled
payload is a `wandb.proto.wandb_internal_pb2.Record`. CRCs are not verified: the reader is for
tests and inspection, and a torn tail record is dropped.

wandb-core writes asynchronously: its last records reach the file tens of ms after `run.finish()`
returns (`wandb.teardown()` waits for them); a complete run ends with an exit record (`exit_code`).

`wandb leet inspect --json RUN_DIR` prints the same records as JSON from the command line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_HEADER = 7
BLOCK_SIZE = 32 * 1024
RECORD_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def find_run_file(path: str | Path) -> Path:
    """The `.wandb` file of `path`: the file itself or the one inside a run folder."""
    path = Path(path)
    if path.is_file():
        return path
    found = sorted(path.glob("run-*.wandb")) if path.is_dir() else []
    if not found:
        raise FileNotFoundError(f"{path}: no run-*.wandb file (expected a W&B run folder or .wandb file)")
    return found[0]


def read_payloads(path: str | Path) -> Iterator[bytes]:
    """The raw record payloads of a `.wandb` file, in write order."""
    data = find_run_file(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B transaction log (header {data[:4]!r}, expected b':W&B')")
    pos, parts = FILE_HEADER, []
    while pos + RECORD_HEADER <= len(data):
        block_left = BLOCK_SIZE - pos % BLOCK_SIZE
        if block_left < RECORD_HEADER:  # zero padding at the end of a block
            pos += block_left
            continue
        length = int.from_bytes(data[pos + 4 : pos + 6], "little")
        kind = data[pos + 6]
        start, end = pos + RECORD_HEADER, pos + RECORD_HEADER + length
        if kind not in (FULL, FIRST, MIDDLE, LAST) or end > len(data):
            break  # zero fill or a torn tail: nothing more was written
        pos = end
        if kind == FULL:
            yield data[start:end]
        elif kind == FIRST:
            parts = [data[start:end]]
        elif kind == MIDDLE:
            parts.append(data[start:end])
        else:
            yield b"".join([*parts, data[start:end]])
            parts = []


def read_records(path: str | Path) -> Iterator[Any]:
    """`wandb_internal_pb2.Record` messages of a `.wandb` file."""
    from wandb.proto import wandb_internal_pb2

    for payload in read_payloads(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        yield record


def _set_nested(target: dict[str, Any], item: Any) -> None:
    """Store an item's JSON value under its `key` or `nested_key` path (media fields are nested)."""
    keys = [item.key] if item.key else list(item.nested_key)
    for part in keys[:-1]:
        target = target.setdefault(part, {})
    target[keys[-1]] = json.loads(item.value_json)


@dataclass
class OfflineRun:
    """What an offline run recorded: identity, config, history rows, summary, metric definitions, files."""

    run_id: str = ""
    project: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # rows; media values are dicts
    summary: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)  # {"type", "name", "files": {path: local}}
    exit_code: int | None = None

    def values(self, key: str) -> list[Any]:
        """Every logged value of `key`, in step order."""
        return [row[key] for row in self.history if key in row]


def read_run(path: str | Path) -> OfflineRun:
    """Parse an offline run folder (or its `.wandb` file) into an `OfflineRun`."""
    from google.protobuf.json_format import MessageToDict

    run = OfflineRun()
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.run_id, run.project, run.group = record.run.run_id, record.run.project, record.run.run_group
            run.job_type, run.tags = record.run.job_type, list(record.run.tags)
            for item in record.run.config.update:
                _set_nested(run.config, item)
        elif kind == "config":
            for item in record.config.update:
                _set_nested(run.config, item)
        elif kind == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                _set_nested(row, item)
            run.history.append(row)
        elif kind == "summary":
            for item in record.summary.update:
                _set_nested(run.summary, item)
        elif kind == "metric":
            run.metrics.append(MessageToDict(record.metric, preserving_proto_field_name=True))
        elif kind == "files":
            run.files += [f.path for f in record.files.files]
        elif kind == "artifact":
            files = {entry.path: entry.local_path for entry in record.artifact.manifest.contents}
            run.artifacts.append({"type": record.artifact.type, "name": record.artifact.name, "files": files})
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def offline_run_dirs(save_dir: str | Path) -> list[Path]:
    """The `offline-run-*` folders under `<save_dir>/wandb`, oldest first (names start with the time)."""
    return sorted((Path(save_dir) / "wandb").glob("offline-run-*"))
