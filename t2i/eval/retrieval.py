"""R-precision (Xu et al. 2018, AttnGAN §4): does an image retrieve its own caption among distractors?

For image i, the candidates are its own caption and `num_candidates - 1` captions of other images
drawn uniformly without replacement; the image scores a hit when its own caption has the highest
cosine similarity (top-1). Exact ties (e.g. two images with the same caption text) are split as a
random tie-break would: a tie with k distractors scores 1 / (k + 1). Chance is 1 / num_candidates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.errors import UserError


def r_precision(
    image_features: Tensor,
    text_features: Tensor,
    num_candidates: int = 100,
    rng: torch.Generator | None = None,
    chunk: int = 512,
) -> float:
    """Mean top-1 R-precision of images (N, D) against their captions (N, D), row i matching row i.

    Args:
        image_features: image embeddings (N, D), any scale (they are unit-normalised here).
        text_features: caption embeddings (N, D) in the same space.
        num_candidates: true caption + distractors per image (AttnGAN: 100).
        rng: draws the distractors (CPU generator); pass a seeded one for reproducible numbers.
        chunk: rows scored at a time, bounding memory at chunk x N.
    """
    n = image_features.shape[0]
    if image_features.shape != text_features.shape or image_features.ndim != 2:
        raise ValueError(
            f"r_precision: image_features {tuple(image_features.shape)} and text_features "
            f"{tuple(text_features.shape)} must both be (N, D)"
        )
    if not 2 <= num_candidates <= n:
        raise UserError(f"r_precision: num_candidates={num_candidates} needs 2 <= it <= N={n} captions")
    image = F.normalize(image_features.float(), dim=-1).cpu()
    text = F.normalize(text_features.float(), dim=-1).cpu()
    score = 0.0
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(start + chunk, n))
        # Distractors: the num_candidates - 1 smallest random keys among the other images.
        keys = torch.rand(len(rows), n, generator=rng)
        keys[torch.arange(len(rows)), rows] = float("inf")
        others = keys.topk(num_candidates - 1, dim=1, largest=False).indices  # (R, K-1)
        sim = image[rows] @ text.T  # (R, N) cosine similarities
        true_sim = sim[torch.arange(len(rows)), rows][:, None]  # (R, 1)
        distractor_sim = sim.gather(1, others)  # (R, K-1)
        beaten = (distractor_sim > true_sim).any(dim=1)
        ties = (distractor_sim == true_sim).sum(dim=1)
        score += float(torch.where(beaten, 0.0, 1.0 / (1.0 + ties)).sum())
    return score / n
