"""GANOptions: the GAN core's training options, one block (`model.init_args.gan`) for every family.

Every `GANModule` family takes them through one `gan` argument whose default is the family's own
`GANOptions` (VideoGAN: 2 D steps per G step), so a YAML `gan:` block that sets only some fields
keeps the family's defaults for the others. Checkpoints store the block as a plain dict
(`GANOptions.as_dict`): `torch.load(weights_only=True)` refuses a pickled dataclass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NoReturn

from ganforge.errors import UserError
from ganforge.losses import LOSS_PAIRS

LR_DECAYS = ("none", "linear")
WGAN_GP_WEIGHT = 10.0  # lambda of the WGAN-GP paper (Gulrajani et al. 2017)


@dataclass(frozen=True)
class GANOptions:
    """Losses, optimisers, schedule, EMA and speed paths of `GANModule`. Steps are generator steps.

    Args:
        loss: adversarial loss pair: "hinge", "ns", "wgan" or "wgan-gp" (`ganforge.losses`).
        g_lr: Adam learning rate of G (TTUR, Heusel et al. 2017).
        d_lr: Adam learning rate of D.
        g_betas: Adam betas of G.
        d_betas: Adam betas of D.
        d_steps_per_g_step: D updates per G update (2 in DVD-GAN).
        accumulate_grad_batches: batches whose gradients are summed into one update of each network.
        grad_clip_norm: clip each network's gradient norm to this value; None: no clipping.
        gp_weight: WGAN-GP penalty weight (0: off; "wgan-gp" with 0 uses the paper's 10).
        r1_weight: R1 penalty weight on real data (Mescheder et al. 2018; 0: off).
        ema_decay: weight on the old EMA average of G, in [0, 1); 0: the EMA is a copy of G.
        ema_start_step: generator step before which the EMA is a plain copy.
        max_consecutive_nonfinite: non-finite losses in a row tolerated before training stops.
        lr_decay: "none" or "linear" (every learning rate decays linearly to 0 at trainer.max_steps).
        channels_last: store 2-D conv weights (so activations) channels_last (`ganforge.acceleration`).
        compile: torch.compile G and D at fit start (opt-in; see `ganforge.acceleration`).
    """

    loss: str = "hinge"
    g_lr: float = 1e-4
    d_lr: float = 4e-4
    g_betas: tuple[float, float] = (0.0, 0.999)
    d_betas: tuple[float, float] = (0.0, 0.999)
    d_steps_per_g_step: int = 1
    accumulate_grad_batches: int = 1
    grad_clip_norm: float | None = None
    gp_weight: float = 0.0
    r1_weight: float = 0.0
    ema_decay: float = 0.999
    ema_start_step: int = 0
    max_consecutive_nonfinite: int = 10
    lr_decay: str = "none"
    channels_last: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        if self.loss not in LOSS_PAIRS:
            _fail(f"loss={self.loss!r}; expected one of {sorted(LOSS_PAIRS)}")
        for name in ("g_lr", "d_lr"):
            if not getattr(self, name) > 0:
                _fail(f"{name}={getattr(self, name)}; expected > 0")
        for name in ("g_betas", "d_betas"):
            betas = tuple(getattr(self, name))
            if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
                _fail(f"{name}={list(betas)}; expected two values in [0, 1)")
            object.__setattr__(self, name, betas)  # a YAML list or checkpoint tuple, stored as a tuple
        for name in ("d_steps_per_g_step", "accumulate_grad_batches", "max_consecutive_nonfinite"):
            if getattr(self, name) < 1:
                _fail(f"{name}={getattr(self, name)}; expected >= 1")
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            _fail(f"grad_clip_norm={self.grad_clip_norm}; expected > 0 or null")
        for name in ("gp_weight", "r1_weight", "ema_start_step"):
            if getattr(self, name) < 0:
                _fail(f"{name}={getattr(self, name)}; expected >= 0")
        if not 0.0 <= self.ema_decay < 1.0:
            _fail(f"ema_decay={self.ema_decay}; expected a value in [0, 1) (the weight on the old average)")
        if self.lr_decay not in LR_DECAYS:
            _fail(f"lr_decay={self.lr_decay!r}; expected one of {list(LR_DECAYS)}")
        if self.loss == "wgan-gp" and self.gp_weight == 0:
            object.__setattr__(self, "gp_weight", WGAN_GP_WEIGHT)  # frozen: set once, while building

    def as_dict(self) -> dict[str, Any]:
        """The options as plain data (tuples, numbers, strings), as checkpoints store them."""
        return asdict(self)


def _fail(message: str) -> NoReturn:
    raise UserError(f"gan.{message}")


OPTION_NAMES = frozenset(f.name for f in fields(GANOptions))


def gan_init_args(hparams: Mapping[str, Any], defaults: GANOptions) -> dict[str, Any]:
    """A family's init arguments from checkpoint hyper-parameters, with `gan` as GANOptions.

    `gan` is the stored plain dict; checkpoints written before the block hold its fields as flat
    keys, which are moved into it. Fields given by neither take `defaults` (the family's:
    `GANModule.gan_options()`). Other keys pass through unchanged.
    """
    args = dict(hparams)
    flat = {name: args.pop(name) for name in OPTION_NAMES if name in args}
    block = args.get("gan") or {}
    if isinstance(block, GANOptions):
        block = block.as_dict()
    args["gan"] = replace(defaults, **{**flat, **block})
    return args
