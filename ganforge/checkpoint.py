"""Checkpoint I/O, the only place that writes a `ganforge` header or calls `torch.load`.

- Writing: `atomic_torch_save` (and `AtomicCheckpointIO` for Lightning) never leaves a partial file;
  `stamp_header` adds the `ganforge` header `{"format_version", "family", "ganforge_version", ...}`
  that every family's checkpoints and bundles carry.
- Reading, always with `weights_only=True`: `load_state_file` for any torch file (third-party state
  dicts too), `load_checkpoint` for a ganforge file of a given family, `read_header` for its header.
- Rebuilding: `restore` makes a module from a checkpoint's hyper-parameters and loads its weights
  (optionally those under a prefix, e.g. the EMA generator's) strictly.
- Auxiliary networks (evaluation judges, feature nets): `save_artifact` / `load_artifact` write and
  read `{"ganforge": header, "config": ..., "state_dict": ...}`.

Every failure is a one-line `CheckpointError` naming the file.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO
from torch import Tensor, nn

from ganforge import __version__
from ganforge.errors import CheckpointError, NotGANForgeCheckpointError, WrongFamilyError
from ganforge.options import gan_init_args

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


def stamp_header(checkpoint: dict[str, Any], family: str, **extra: Any) -> None:
    """Set `checkpoint`'s `ganforge` header: format version, `family`, ganforge version, then `extra`.

    Args:
        checkpoint: the dict about to be saved (a Lightning checkpoint, a bundle, an artefact).
        family: what the file holds, e.g. "vidgan", "t2i-image", "t2i-judge-soa".
        extra: more header entries (plain data: `load_checkpoint` reads with weights_only=True).
    """
    checkpoint[HEADER_KEY] = {
        "format_version": FORMAT_VERSION,
        "family": family,
        "ganforge_version": __version__,
        **extra,
    }


def read_header(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The `ganforge` header of a loaded checkpoint; {} when it has none."""
    header = checkpoint.get(HEADER_KEY) if isinstance(checkpoint, Mapping) else None
    return dict(header) if isinstance(header, Mapping) else {}


def load_state_file(path: str | os.PathLike, what: str = "checkpoint", mmap: bool = False) -> Any:
    """Read any `torch.save` file safely (`weights_only=True`), on CPU: a checkpoint or a state dict.

    Args:
        path: the file.
        what: how error messages name the file ("checkpoint", "--inception", ...).
        mmap: memory-map the tensors instead of reading them (zip-format files only).

    Raises:
        CheckpointError: "<what> '<path>' ..." for a missing path, a directory, a file that is not a
            torch file or is truncated, or a pickle that needs arbitrary code.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{what} '{path}' does not exist")
    if path.is_dir():
        raise CheckpointError(f"{what} '{path}' is a directory; pass the file inside it")
    with path.open("rb") as f:
        magic = f.read(4)
    if not (magic.startswith(b"PK") or magic.startswith(b"\x80")):  # torch.save: a zip, or a legacy pickle
        raise CheckpointError(
            f"{what} '{path}' is not a readable torch checkpoint (neither a zip archive nor a pickle: "
            f"it starts with {magic!r})"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        culprit = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", str(err))
        reason = f"it references {culprit.group(1)}" if culprit else "it holds objects other than tensors"
        raise CheckpointError(
            f"{what} '{path}' was refused by the safe loader (weights_only=True): {reason}; "
            "ganforge never unpickles arbitrary objects from a checkpoint"
        ) from None
    except Exception as err:  # truncated zips surface as RuntimeError, KeyError, EOFError, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        first = first.split(". ")[0]  # torch appends paragraphs of advice to the cause
        raise CheckpointError(f"{what} '{path}' is not a readable torch checkpoint ({first})") from None


def load_checkpoint(path: str | os.PathLike, family: str | None = None) -> dict[str, Any]:
    """Read a ganforge checkpoint safely (`weights_only=True`) and check its header.

    Raises `CheckpointError` naming the file for: a missing path, a directory, a file that is not a
    torch checkpoint or is truncated, a pickle that needs arbitrary code (see `load_state_file`), a
    file without the header (`NotGANForgeCheckpointError`), a checkpoint of another family
    (`WrongFamilyError`), or a newer format version than this ganforge reads.
    """
    ckpt = load_state_file(path)
    if not isinstance(ckpt, dict) or HEADER_KEY not in ckpt:
        raise NotGANForgeCheckpointError(
            f"checkpoint '{path}' is not a ganforge checkpoint (no '{HEADER_KEY}' header)"
        )
    header = read_header(ckpt)
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


def restore(
    cls: type,
    checkpoint: Mapping[str, Any],
    path: str | os.PathLike,
    prefix: str | None = None,
    build: Callable[..., nn.Module] | None = None,
) -> nn.Module:
    """A module rebuilt from a checkpoint's hyper-parameters, with its weights loaded strictly.

    Args:
        cls: the LightningModule class that wrote `checkpoint`; its `gan_options` (a `GANModule`)
            gather the stored `gan` block, or the flat options of checkpoints written before it.
        checkpoint: a loaded checkpoint (or bundle entry) with "hyper_parameters" and "state_dict".
        path: the file it came from, for error messages.
        prefix: load only the weights under `prefix.` (e.g. "ema.model"), with the prefix removed.
        build: makes the module from the hyper-parameters (default: `cls` itself), e.g. a class's
            `inference_network` when only the network under `prefix` is wanted.

    Raises:
        CheckpointError: "checkpoint '<path>' ..." when the hyper-parameters or weights are missing,
            do not fit `cls`, or do not match the rebuilt module.
    """
    hparams, state = checkpoint.get("hyper_parameters"), checkpoint.get("state_dict")
    if not isinstance(hparams, dict) or not isinstance(state, dict):
        raise CheckpointError(f"checkpoint '{path}' lacks the {cls.__name__} hyper_parameters or state_dict")
    # LightningCLI records `_class_path` / `_instantiator` beside the init arguments.
    hparams = {k: v for k, v in hparams.items() if not k.startswith("_")}
    gan_options = getattr(cls, "gan_options", None)
    if gan_options is not None:
        hparams = gan_init_args(hparams, gan_options())
    try:
        module = (build or cls)(**hparams)
        module.load_state_dict(state if prefix is None else submodule_state(state, prefix))
    except (TypeError, ValueError, RuntimeError) as err:
        # One line: load_state_dict lists the missing and unexpected keys on lines of their own.
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise CheckpointError(f"checkpoint '{path}' does not rebuild a {cls.__name__}: {reason}") from None
    return module


def save_artifact(
    path: str | os.PathLike,
    family: str,
    config: dict[str, Any],
    state_dict: Mapping[str, Tensor],
    **header_extra: Any,
) -> Path:
    """Write an auxiliary network (a judge, a feature net) atomically, with the ganforge header.

    Args:
        path: the file to write.
        family: what it holds, checked by `load_artifact` (e.g. "t2i-judge-soa", "vidgan-fd-local").
        config: plain data that rebuilds the network (and notes about its training).
        state_dict: the network's weights.
        header_extra: more header entries (see `stamp_header`).
    """
    artifact: dict[str, Any] = {"config": config, "state_dict": state_dict}
    stamp_header(artifact, family, **header_extra)
    atomic_torch_save(artifact, path)
    return Path(path)


def load_artifact(path: str | os.PathLike, family: str) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """(config, state_dict) of a file written by `save_artifact` for `family`, read with weights_only=True.

    Raises:
        CheckpointError: naming the file when it is unreadable, of another family, or lacks either part.
    """
    ckpt = load_checkpoint(path, family=family)
    if not isinstance(ckpt.get("config"), dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"{family} file '{path}' lacks its config or state_dict")
    return ckpt["config"], ckpt["state_dict"]


def submodule_state(state_dict: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The entries of `state_dict` under `prefix.`, with the prefix removed."""
    prefix = prefix.rstrip(".") + "."
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
