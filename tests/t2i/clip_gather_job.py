"""One rank of the CLIP-gather test: `python clip_gather_job.py OUT` under RANK/WORLD_SIZE/MASTER_* (gloo).

Every rank builds the same towers, embeds its rows of a fixed global batch, takes the clip stage's
loss with `gather=True` and backward, averages the gradients over ranks as DDP does, and saves
what the test compares with one process on the global batch.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist

from t2i.models.contrastive import gather_features, symmetric_infonce

sys.path.insert(0, os.path.dirname(__file__))
from clip_gather_case import GLOBAL_BATCH, tiny_case  # noqa: E402


def main(out: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    towers, images, texts = tiny_case()
    rows = slice(rank * GLOBAL_BATCH // world, (rank + 1) * GLOBAL_BATCH // world)
    image, text = towers(images[rows], texts[rows])
    gathered, first = gather_features(text.detach())
    loss, _ = symmetric_infonce(image, text, towers.logit_scale, gather=True)
    local_loss, _ = symmetric_infonce(image.detach(), text.detach(), towers.logit_scale, gather=False)
    loss.backward()
    for param in towers.parameters():  # what DDP's gradient all-reduce does
        dist.all_reduce(param.grad)
        param.grad /= world
    mean_loss = loss.detach().clone()
    dist.all_reduce(mean_loss)
    torch.save(
        {
            "gathered": gathered,
            "first": first,
            "mean_loss": mean_loss / world,
            "local_loss": local_loss.detach(),
            "grads": {name: param.grad for name, param in towers.named_parameters()},
        },
        out,
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
