"""Every loss against hand-computed values; penalties against direct autograd."""

import math

import pytest
import torch
from torch.testing import assert_close

from ganforge import losses


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


REAL = torch.tensor([2.0, 0.5, -1.0])
FAKE = torch.tensor([-3.0, 0.0, 1.5])


def test_hinge_by_hand():
    # relu(1 - [2, .5, -1]) = [0, .5, 2] -> mean 2.5/3 ; relu(1 + [-3, 0, 1.5]) = [0, 1, 2.5] -> 3.5/3
    assert_close(losses.hinge_d(REAL, FAKE), torch.tensor(2.5 / 3 + 3.5 / 3))
    assert_close(losses.hinge_g(FAKE), torch.tensor(-(-3.0 + 0.0 + 1.5) / 3))


def test_hinge_d_is_zero_on_separated_logits():
    assert losses.hinge_d(torch.full((4,), 1.5), torch.full((4,), -1.0)) == 0


def test_hinge_g_is_not_relu():
    # DVD-GAN's G loss is -E[D(G(z))]; a relu(1 - D) version would be 0 here.
    assert losses.hinge_g(torch.tensor([5.0])) == -5.0


def test_ns_by_hand():
    d = sum(softplus(-r) for r in REAL.tolist()) / 3 + sum(softplus(f) for f in FAKE.tolist()) / 3
    g = sum(softplus(-f) for f in FAKE.tolist()) / 3
    assert_close(losses.ns_d(REAL, FAKE), torch.tensor(d))
    assert_close(losses.ns_g(FAKE), torch.tensor(g))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert_close(losses.ns_d(REAL, FAKE), bce(REAL, torch.ones(3)) + bce(FAKE, torch.zeros(3)))


def test_wgan_by_hand():
    assert_close(losses.wgan_d(REAL, FAKE), torch.tensor((-1.5 / 3) - (1.5 / 3)))
    assert_close(losses.wgan_g(FAKE), torch.tensor(1.5 / 3))


def test_loss_pair_rejects_unknown_name():
    with pytest.raises(ValueError, match="loss='lsgan'"):
        losses.loss_pair("lsgan")


def quadratic_critic(x: torch.Tensor) -> torch.Tensor:
    """D(x) = sum(w * x^2) per sample, so grad = 2 w x in closed form."""
    w = torch.linspace(0.5, 2.0, x[0].numel()).view(x[0].shape)
    return (w * x.pow(2)).flatten(1).sum(1)


def test_r1_matches_closed_form_and_autograd():
    x = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    logits = quadratic_critic(x)
    r1 = losses.r1_penalty(logits, x)
    w = torch.linspace(0.5, 2.0, 12).view(3, 4)
    expected = (2 * w * x.detach()).flatten(1).pow(2).sum(1).mean()
    assert_close(r1, expected)
    (direct,) = torch.autograd.grad(quadratic_critic(x).sum(), x)
    assert_close(r1, direct.flatten(1).pow(2).sum(1).mean())
    r1.backward()  # create_graph=True: the penalty itself is differentiable
    assert x.grad is not None


def test_gradient_penalty_matches_autograd():
    gen = torch.Generator().manual_seed(2)
    real, fake = torch.randn(6, 2, 3, generator=gen), torch.randn(6, 2, 3, generator=gen)
    alpha = torch.rand(6, generator=gen)
    x_hat = losses.interpolate(real, fake, alpha)
    assert_close(x_hat, alpha.view(6, 1, 1) * real + (1 - alpha.view(6, 1, 1)) * fake)
    gp = losses.gradient_penalty(quadratic_critic(x_hat), x_hat)
    (grad,) = torch.autograd.grad(quadratic_critic(x_hat).sum(), x_hat)
    assert_close(gp, (grad.flatten(1).norm(dim=1) - 1).pow(2).mean())


def test_gradient_penalty_is_zero_for_unit_slope_critic():
    x = torch.randn(4, 3).requires_grad_(True)
    logits = x @ torch.tensor([0.6, 0.8, 0.0])  # |grad| = 1 everywhere
    assert_close(losses.gradient_penalty(logits, x), torch.tensor(0.0))


MASK = torch.tensor([True, False, True, True, False, True])


@pytest.mark.parametrize("name", sorted(losses.LOSS_PAIRS))
def test_masked_losses_equal_the_selection_and_its_gradients(name: str) -> None:
    d_loss, g_loss = losses.loss_pair(name)
    gen = torch.Generator().manual_seed(0)
    real, fake = (torch.randn(6, generator=gen).requires_grad_(True) for _ in range(2))
    fake_mask = torch.tensor([True, True, False, True, False, False])
    masked = losses.masked_d_loss(d_loss, real, MASK, fake, fake_mask) + losses.masked_g_loss(
        g_loss, fake, MASK
    )
    masked_grads = torch.autograd.grad(masked, (real, fake))
    selected = d_loss(real[MASK], fake[fake_mask]) + g_loss(fake[MASK])
    assert_close(masked, selected)
    for got, want in zip(masked_grads, torch.autograd.grad(selected, (real, fake))):
        assert_close(got, want)
    none = torch.zeros(6, dtype=torch.bool)
    assert (
        losses.masked_d_loss(d_loss, real, none, fake, none) == 0
        and losses.masked_g_loss(g_loss, fake, none) == 0
    )


def test_masked_penalties_equal_the_selected_rows_and_their_gradients() -> None:
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(5, generator=gen).requires_grad_(True)

    def critic(x: torch.Tensor) -> torch.Tensor:  # row-wise, with a parameter to differentiate
        return torch.tanh(x @ weight).pow(2)

    x = torch.randn(6, 5, generator=gen)
    masked_in, selected_in = x.clone().requires_grad_(True), x[MASK].clone().requires_grad_(True)
    for penalty in (losses.r1_penalty, losses.gradient_penalty):
        masked = penalty(critic(masked_in), masked_in, MASK)
        selected = penalty(critic(selected_in), selected_in)
        assert_close(masked, selected)
        (masked_grad,) = torch.autograd.grad(masked, weight)
        assert_close(masked_grad, torch.autograd.grad(selected, weight)[0])
        assert_close(
            penalty(critic(masked_in), masked_in, torch.ones(6, dtype=torch.bool)),
            penalty(critic(masked_in), masked_in),
        )
