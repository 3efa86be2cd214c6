"""GANDDPStrategy: DDP that synchronises G and D separately (mmengine's MMSeparateDistributedDataParallel).

Lightning's DDP wraps the whole LightningModule in one `DistributedDataParallel`. A GAN steps G and
D in turn, so each backward leaves one network idle; that wrapper needs `find_unused_parameters=True`,
which walks the autograd graph and all-reduces the idle network's gradient buckets as zeros on every
backward (about twice the traffic needed per D, D, G cycle on vidgan's kinetics600_64).

Here `generator` and `discriminator` each get their own wrapper, and the LightningModule stays
unwrapped. The wrappers are never called: the families keep calling `self.generator(...)`, so
checkpoint keys, attribute access and the EMA's name matching are untouched. What makes a backward
all-reduce is the reducer's `prepare_for_backward`, which Lightning already calls before every
`manual_backward` (`pre_backward`); this strategy calls it for the network whose parameters
currently require gradients, i.e. the one `toggled_optimizer` enabled. That is also why DDP's
per-forward buffer broadcast does not happen here: buffers (batch-norm running statistics) stay per
rank, as with mmengine's and StyleGAN2-ADA's `broadcast_buffers=False`; checkpoints hold rank 0's.

Modules that are not a `GANModule` (t2i's CLIP stage, vidgan's ConvGRU baseline) get Lightning's
plain DDP, with `find_unused_parameters=True` unless set.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from typing import Any

import torch
from pytorch_lightning.overrides.distributed import (
    _register_ddp_comm_hook,
    _sync_module_states,
    prepare_for_backward,
)
from pytorch_lightning.strategies import DDPStrategy, StrategyRegistry
from pytorch_lightning.utilities.exceptions import _augment_message
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from ganforge.errors import UserError

GAN_DDP_STRATEGY = "gan_ddp"
GAN_DDP_FIND_UNUSED = "gan_ddp_find_unused_parameters_true"
NETWORKS = ("generator", "discriminator")


class GANDDPStrategy(DDPStrategy):
    """DDP with one `DistributedDataParallel` per network of a `GANModule` (see the module docstring).

    Args:
        find_unused_parameters: for the G and D wrappers, False by default: every backward must
            give each parameter of the network being stepped a gradient (else DDP stops with
            "Expected to have finished reduction"; then use "gan_ddp_find_unused_parameters_true").
            For a plain LightningModule, None means True (what Lightning's whole-module wrapper of
            ganforge used before).
        The remaining arguments are `DDPStrategy`'s. `ddp_comm_hook` is registered on both
            wrappers; `ddp_comm_state` and `static_graph` are refused for GANs (one state cannot
            serve two reducers, and Lightning's static-graph flush assumes one wrapper).
    """

    def __init__(self, *args: Any, find_unused_parameters: bool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._find_unused = find_unused_parameters
        self.networks: dict[str, DistributedDataParallel] = {}

    def configure_ddp(self) -> None:
        from ganforge.module import GANModule  # ganforge.module imports this file

        module = self.model
        if not isinstance(module, GANModule):
            self._ddp_kwargs = {**self._ddp_kwargs, "find_unused_parameters": self._find_unused is not False}
            super().configure_ddp()
            return
        if self._ddp_kwargs.get("static_graph"):
            raise UserError(f"{GAN_DDP_STRATEGY}: static_graph=True is not supported (two DDP wrappers)")
        if self._ddp_comm_state is not None:
            raise UserError(f"{GAN_DDP_STRATEGY}: ddp_comm_state is not supported (one state, two reducers)")
        # Every rank starts from rank 0's weights, EMA copy and buffers included: the wrappers below
        # cover only G and D, so they skip their own initial broadcast.
        _sync_module_states(module)
        device_ids = self.determine_ddp_device_ids()
        kwargs = {**self._ddp_kwargs, "find_unused_parameters": bool(self._find_unused), "init_sync": False}
        # https://pytorch.org/docs/stable/notes/cuda.html#id5, as DDPStrategy._setup_model does
        stream = torch.cuda.stream(torch.cuda.Stream()) if device_ids is not None else nullcontext()
        with stream:
            self.networks = {
                name: DistributedDataParallel(getattr(module, name), device_ids=device_ids, **kwargs)
                for name in NETWORKS
            }
        if self.root_device.type == "cuda":
            for ddp in self.networks.values():
                _register_ddp_comm_hook(
                    ddp, ddp_comm_hook=self._ddp_comm_hook, ddp_comm_wrapper=self._ddp_comm_wrapper
                )

    def pre_backward(self, closure_loss: Tensor) -> None:
        """Arm the reducer of each network with trainable parameters (the toggled one) for this backward."""
        if not self.networks:
            super().pre_backward(closure_loss)
            return
        for ddp in self.networks.values():
            if any(p.requires_grad for p in ddp.module.parameters()):
                prepare_for_backward(ddp, closure_loss)

    @contextmanager
    def block_backward_sync(self) -> Iterator[None]:
        """DDP's `no_sync` on both wrappers: gradients accumulate locally until a synchronised backward."""
        if not self.networks:
            with super().block_backward_sync():
                yield
            return
        with ExitStack() as stack:
            for ddp in self.networks.values():
                stack.enter_context(ddp.no_sync())
            yield

    def on_exception(self, exception: BaseException) -> None:
        if not self.networks:
            super().on_exception(exception)
            return
        _augment_message(
            exception,
            pattern=".*Expected to have finished reduction in the prior iteration.*",
            new_message=(
                "A parameter of the generator or discriminator got no gradient in a backward that "
                f"stepped its network; use strategy={GAN_DDP_FIND_UNUSED!r}"
            ),
        )

    def teardown(self) -> None:
        self.networks = {}  # the reducers' gradient hooks go with them
        super().teardown()


StrategyRegistry.register(
    GAN_DDP_STRATEGY,
    GANDDPStrategy,
    description="DDP with separate G and D wrappers (ganforge)",
    find_unused_parameters=None,
)
StrategyRegistry.register(
    GAN_DDP_FIND_UNUSED,
    GANDDPStrategy,
    description="gan_ddp whose G and D wrappers find unused parameters (ganforge)",
    find_unused_parameters=True,
)
