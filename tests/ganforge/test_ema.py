"""EMA arithmetic against its closed form, start-step behaviour and the buffer policy."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from ganforge.ema import EMA


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_decay_zero_equals_source():
    src = net()
    ema = EMA(src, decay=0.0)
    with torch.no_grad():
        src[0].weight.add_(1.0)
    ema.update(src, step=1)
    assert_close(ema.model[0].weight, src[0].weight)


def test_closed_form_after_n_updates():
    src = net()
    decay = 0.9
    ema = EMA(src, decay=decay)
    theta0 = src[0].weight.detach().clone()
    history = []
    for step in range(1, 6):
        with torch.no_grad():
            src[0].weight.add_(0.1 * step)
        history.append(src[0].weight.detach().clone())
        ema.update(src, step)
    # theta_ema_n = decay^n theta_0 + sum_i (1 - decay) decay^(n - i) theta_i
    n = len(history)
    expected = decay**n * theta0 + sum((1 - decay) * decay ** (n - i) * h for i, h in enumerate(history, 1))
    assert_close(ema.model[0].weight, expected)


def test_before_start_step_is_a_copy():
    src = net()
    ema = EMA(src, decay=0.99, start_step=10)
    with torch.no_grad():
        src[0].weight.mul_(3.0)
    ema.update(src, step=9)
    assert_close(ema.model[0].weight, src[0].weight)
    assert ema.decay_at(9) == 0.0 and ema.decay_at(10) == 0.99


def test_buffers_copied_not_averaged():
    src = net()
    ema = EMA(src, decay=0.99)
    src.train()
    src(torch.randn(8, 3))  # moves running stats and num_batches_tracked
    ema.update(src, step=1)
    assert_close(ema.model[1].running_mean, src[1].running_mean)
    assert ema.model[1].num_batches_tracked == src[1].num_batches_tracked == 1


def test_mismatched_networks_raise():
    ema = EMA(net(), decay=0.9)
    with pytest.raises(ValueError, match="differ"):
        ema.update(nn.Sequential(nn.Linear(3, 4)), step=1)


def test_decay_range_checked():
    with pytest.raises(ValueError, match="decay=1.0"):
        EMA(net(), decay=1.0)


def test_ema_model_is_frozen():
    ema = EMA(net())
    assert not any(p.requires_grad for p in ema.model.parameters())
