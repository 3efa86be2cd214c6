"""Checkpoint I/O: atomic writes for training, `weights_only=True` reads for inference.

Training checkpoints are Lightning checkpoints plus a `ganforge` header
`{"format_version", "family", "ganforge_version"}` added by `GANModule.on_save_checkpoint`.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from ganforge.errors import CheckpointError, NotGANForgeCheckpointError, WrongFamilyError

FORMAT_VERSION = 1
HEADER_KEY = "ganforge"


class _WriteErrorRecorder:
    """A binary file for `torch.save` that keeps the OSError of a failed write (ENOSPC, EFBIG, EIO)."""

    def __init__(self, file: Any) -> None:
        self.file, self.error = file, None

    def write(self, data: Any) -> int:
        try:
            return self.file.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.file.flush()


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """`torch.save` to a temp file in the same folder, fsync, then `os.replace` onto `path`.

    A crash at any moment leaves either the old file or the new one under `path`, never a partial
    one; the temp file has a dot-prefixed name that no checkpoint glob matches.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, "wb") as f:
            writer = _WriteErrorRecorder(f)
            try:
                torch.save(obj, writer)
            except RuntimeError:
                if writer.error is not None:  # torch's zip writer reports a failed write as RuntimeError
                    raise writer.error from None
                raise
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO whose `save_checkpoint` is atomic (used by every ganforge Trainer).

    A failed write (disk full, read-only folder) raises `CheckpointError` naming the file, which
    stops training with a one-line error; the previous files are never touched.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"AtomicCheckpointIO takes no storage_options, got {storage_options!r}")
        try:
            atomic_torch_save(checkpoint, path)
        except OSError as err:  # disk full, read-only folder, file size limit, ...
            reason = f"[Errno {err.errno}] {err.strerror}" if err.strerror else str(err)
            raise CheckpointError(
                f"could not write checkpoint '{path}' ({reason}); training stopped, the checkpoints "
                "saved before are untouched"
            ) from err


def load_checkpoint(path: str | os.PathLike, family: str | None = None) -> dict[str, Any]:
    """Read a ganforge checkpoint safely (`weights_only=True`) and check its header.

    Raises `CheckpointError` naming the file for: a missing path, a directory, a file that is not a
    torch checkpoint or is truncated, a pickle that needs arbitrary code, a checkpoint of another
    family, or a newer format version than this ganforge reads.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint '{path}' is a directory; pass the .ckpt file inside it")
    with path.open("rb") as f:
        magic = f.read(4)
    if not (magic.startswith(b"PK") or magic.startswith(b"\x80")):  # torch.save: a zip, or a legacy pickle
        raise CheckpointError(
            f"checkpoint '{path}' is not a readable torch checkpoint (neither a zip archive nor a pickle: "
            f"it starts with {magic!r})"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        culprit = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", str(err))
        what = f"it references {culprit.group(1)}" if culprit else "it holds objects other than tensors"
        raise CheckpointError(
            f"checkpoint '{path}' was refused by the safe loader (weights_only=True): {what}; "
            "ganforge never unpickles arbitrary objects from a checkpoint"
        ) from None
    except Exception as err:  # truncated zips surface as RuntimeError, KeyError, EOFError, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        first = first.split(". ")[0]  # torch appends paragraphs of advice to the cause
        raise CheckpointError(f"checkpoint '{path}' is not a readable torch checkpoint ({first})") from None
    if not isinstance(ckpt, dict) or HEADER_KEY not in ckpt:
        raise NotGANForgeCheckpointError(
            f"checkpoint '{path}' is not a ganforge checkpoint (no '{HEADER_KEY}' header)"
        )
    header = ckpt[HEADER_KEY]
    version = header.get("format_version", 0)
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint '{path}' has format_version {version}, newer than this ganforge reads "
            f"({FORMAT_VERSION}); upgrade ganforge"
        )
    if family is not None and header.get("family") != family:
        raise WrongFamilyError(
            f"checkpoint '{path}' is not a {family} checkpoint (its family is {header.get('family')!r})"
        )
    return ckpt


def submodule_state(state_dict: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The entries of `state_dict` under `prefix.`, with the prefix removed."""
    prefix = prefix.rstrip(".") + "."
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
