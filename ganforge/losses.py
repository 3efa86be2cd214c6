"""Adversarial losses and penalties as pure functions (StudioGAN-style d_*/g_* pairs).

Every loss takes logits and returns a scalar. `hinge` follows Lim & Ye 2017 as used by
DVD-GAN (the generator side is -E[D(G(z))], not relu(1 - D)); `ns` is the non-saturating loss
of Goodfellow et al. 2014; `wgan` with `gradient_penalty` is WGAN-GP (Gulrajani et al. 2017);
`r1_penalty` is Mescheder et al. 2018.

The masked forms (`masked_d_loss`, `masked_g_loss`, and the penalties' `mask`) score a fixed-shape
batch whose padding rows (e.g. the empty object slots of a layout) weigh 0: the same values as
selecting the real rows, without the boolean selection whose size the host would have to read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.errors import UserError

LossName = Literal["hinge", "ns", "wgan", "wgan-gp"]


def hinge_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g(fake_logits: Tensor) -> Tensor:
    """-E[D(G(z))]."""
    return -fake_logits.mean()


def ns_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[softplus(-D(x))] + E[softplus(D(G(z)))], i.e. BCE with real=1, fake=0."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def ns_g(fake_logits: Tensor) -> Tensor:
    """E[softplus(-D(G(z)))]: the non-saturating generator loss -log sigmoid(D(G(z)))."""
    return F.softplus(-fake_logits).mean()


def wgan_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[D(G(z))] - E[D(x)]."""
    return fake_logits.mean() - real_logits.mean()


def wgan_g(fake_logits: Tensor) -> Tensor:
    """-E[D(G(z))]."""
    return -fake_logits.mean()


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of values (M,) where mask (M,) is True; 0 when none is (values elsewhere may be anything)."""
    return torch.where(mask, values, 0.0).sum() / mask.sum().clamp_min(1)


def sample_mean(values: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean of per-sample values (B,): all of them, or those where mask (B,) bool is True (`masked_mean`)."""
    return values.mean() if mask is None else masked_mean(values, mask)


def masked_d_loss(
    d_loss: Callable[[Tensor, Tensor], Tensor],
    real: Tensor,
    real_mask: Tensor,
    fake: Tensor,
    fake_mask: Tensor,
) -> Tensor:
    """`d_loss(real[real_mask], fake[fake_mask])` on fixed shapes: no boolean selection, so no host sync.

    Logits of any shape with bool masks of the same shape. Every D loss here is a real term plus a
    fake term, each a mean over its logits: L(r, f) = mean a(r) + mean b(f). Per logit
    L(r_i, 0) = a(r_i) + b(0) and L(0, f_j) = a(0) + b(f_j), so the masked means of these minus
    L(0, 0) are L of the selection. 0 when `real_mask` selects nothing.
    """
    zero = real.new_zeros(())
    real_terms = torch.vmap(lambda r: d_loss(r, zero))(real.flatten())
    fake_terms = torch.vmap(lambda f: d_loss(zero, f))(fake.flatten())
    loss = masked_mean(real_terms, real_mask.flatten()) + masked_mean(fake_terms, fake_mask.flatten())
    return (loss - d_loss(zero, zero)) * real_mask.any()


def masked_g_loss(g_loss: Callable[[Tensor], Tensor], fake: Tensor, mask: Tensor) -> Tensor:
    """`g_loss(fake[mask])` on fixed shapes (logits, bool mask of one shape); 0 when `mask` selects none."""
    return masked_mean(torch.vmap(g_loss)(fake.flatten()), mask.flatten())


def _input_grad_sq_norm(logits: Tensor, inputs: Tensor) -> Tensor:
    """Per-sample squared L2 norm of d(sum logits)/d(inputs), shape (B,)."""
    (grad,) = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    return grad.flatten(1).pow(2).sum(1)


def r1_penalty(real_logits: Tensor, real_inputs: Tensor, mask: Tensor | None = None) -> Tensor:
    """E[||grad_x D(x)||^2] on real data (B, ...), logits (B,); with mask (B,) bool, over its True rows.

    `real_inputs` must have requires_grad set before D ran. A row's gradient is its own logit's,
    for a critic that mixes no rows (no batch statistics), so masked rows change nothing.
    """
    return sample_mean(_input_grad_sq_norm(real_logits, real_inputs), mask)


def gradient_penalty(interp_logits: Tensor, interp_inputs: Tensor, mask: Tensor | None = None) -> Tensor:
    """E[(||grad D(x_hat)||_2 - 1)^2] at x_hat = interpolate(real, fake, alpha), inputs (B, ...);
    with mask (B,) bool, over its True rows."""
    return sample_mean((_input_grad_sq_norm(interp_logits, interp_inputs).sqrt() - 1.0).pow(2), mask)


def interpolate(real: Tensor, fake: Tensor, alpha: Tensor) -> Tensor:
    """x_hat = alpha * real + (1 - alpha) * fake with alpha (B,), broadcast over the other dims.

    The result requires grad, ready for `gradient_penalty`.
    """
    alpha = alpha.view(-1, *([1] * (real.dim() - 1))).to(real)
    return (alpha * real + (1.0 - alpha) * fake.detach()).requires_grad_(True)


DLoss = Callable[[Tensor, Tensor], Tensor]
GLoss = Callable[[Tensor], Tensor]

LOSS_PAIRS: dict[str, tuple[DLoss, GLoss]] = {
    "hinge": (hinge_d, hinge_g),
    "ns": (ns_d, ns_g),
    "wgan": (wgan_d, wgan_g),
    "wgan-gp": (wgan_d, wgan_g),  # same pair; GANModule adds gradient_penalty when gp_weight > 0
}


def loss_pair(name: str) -> tuple[DLoss, GLoss]:
    """The (d_loss, g_loss) functions for `name`; raises UserError naming the choices."""
    if name not in LOSS_PAIRS:
        raise UserError(f"loss={name!r} is not one of {sorted(LOSS_PAIRS)}")
    return LOSS_PAIRS[name]
