"""What a t2i stage's step reads of a caption batch, made on the host before the copy to the device.

Tokenising captions (and ordering objects by mention) on the device batch would make the step wait
for the device (a host sync per step, see ganforge.module). `HostInputs` makes them in Lightning's
`on_before_batch_transfer`, while the batch is still on the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor


class HostInputs:
    """Mixin for a t2i LightningModule (list it before GANModule): the stage's `host_inputs(batch)`
    join every caption batch on the host.

    `host_inputs` returns tensors and plain values made from a host batch (a mapping with "caption",
    (B) strings), among them "tokens" (B, L), which marks a batch that has them.
    """

    device: torch.device

    def host_inputs(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Adds `host_inputs` to a batch of captions while it is still on the host."""
        if isinstance(batch, Mapping) and "caption" in batch and "tokens" not in batch:
            return {**batch, **self.host_inputs(batch)}
        return batch

    def _with_host_inputs(self, batch: Mapping[str, Any]) -> Mapping[str, Any]:
        """The batch with its `host_inputs` on this module's device (made here when the hook did not run,
        e.g. a batch given to a step by hand)."""
        if "tokens" in batch:
            return batch
        made = self.host_inputs(batch)
        return {**batch, **{k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in made.items()}}
