"""Device selection of the inference commands and APIs (`vidgan predict`/`eval`, `t2i generate`/`eval`,
`FramePredictor`, `TextToImage`): the default everywhere is `auto`."""

from __future__ import annotations

import torch

from ganforge.errors import UserError

DEFAULT_DEVICE = "auto"  # the one default of every --device flag and device= argument
DEVICE_HELP = "torch device: auto (cuda when available, else cpu), cpu, cuda, cuda:1, ..."


def resolve_device(name: str | torch.device) -> torch.device:
    """`auto` -> cuda when available, else cpu; anything else as torch spells it (UserError if unknown)."""
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device={name!r} is not a torch device ({DEVICE_HELP})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device={name!r} but CUDA is not available here")
    return device
