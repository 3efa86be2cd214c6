"""ganforge.spectral_norm: torch's spectral-norm parametrization with sigma in fp32 under autocast."""

import pytest
import torch
from spectral_norm_checks import has_spectral_norm
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm
from torch.overrides import TorchFunctionMode

from ganforge.spectral_norm import FP32SpectralNorm, spectral_norm

MATRIX_OPS = {"mv", "vdot"}  # what CUDA autocast would run in bf16 (mv) and what sigma is (vdot)


class MatrixOpRecorder(TorchFunctionMode):
    """Records (op, input dtypes, CPU autocast on?) of the power iteration's and sigma's torch calls.

    A torch-function mode sees each call as Python makes it, before autocast casts anything, so
    the autocast state it reads is the one the op will run under.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, set[torch.dtype], bool]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in MATRIX_OPS:
            dtypes = {a.dtype for a in args if isinstance(a, torch.Tensor)}
            self.calls.append((name, dtypes, torch.is_autocast_enabled("cpu")))
        return func(*args, **(kwargs or {}))


def twin_layers(seed: int = 0) -> tuple[nn.Conv2d, nn.Conv2d]:
    """The same conv with torch's spectral norm and with ours (same weight, same u and v)."""
    torch.manual_seed(seed)
    plain = nn.Conv2d(6, 8, 3)
    ours, theirs = nn.Conv2d(6, 8, 3), nn.Conv2d(6, 8, 3)
    for layer in (ours, theirs):
        layer.load_state_dict(plain.state_dict())
    torch.manual_seed(seed + 1)
    torch_spectral_norm(theirs)
    torch.manual_seed(seed + 1)
    spectral_norm(ours)
    return ours, theirs


def test_fp32_layer_matches_torch_spectral_norm_bitwise():
    ours, theirs = twin_layers()
    for mode in ("train", "eval"):
        ours.train(mode == "train"), theirs.train(mode == "train")
        for _ in range(3):  # three power-iteration steps in training mode
            assert torch.equal(ours.weight, theirs.weight), mode
        assert torch.equal(ours.parametrizations.weight[0]._u, theirs.parametrizations.weight[0]._u)


def test_state_dicts_load_across_torch_and_ours():
    ours, theirs = twin_layers()
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    fresh = spectral_norm(nn.Conv2d(6, 8, 3))
    fresh.load_state_dict(theirs.state_dict())  # a checkpoint written with torch's spectral_norm
    fresh.eval(), theirs.eval()
    assert torch.equal(fresh.weight, theirs.weight)
    assert has_spectral_norm(fresh) and has_spectral_norm(theirs) and not has_spectral_norm(nn.Linear(2, 2))


def test_sigma_is_computed_in_fp32_with_autocast_off():
    """Under autocast every matrix op of the parametrization sees fp32 operands and autocast off.

    CPU autocast does not cast `mv`, CUDA autocast does: checking that autocast is switched off
    around the ops (not just their dtypes here) is what catches a bf16 sigma on GPU.
    """
    ours, theirs = twin_layers()
    for layer, expect_fp32 in ((ours, True), (theirs, False)):
        recorder = MatrixOpRecorder()
        with torch.autocast("cpu", dtype=torch.bfloat16), recorder:
            layer(torch.randn(2, 6, 9, 9))
        ops = {name for name, _, _ in recorder.calls}
        assert ops == MATRIX_OPS, ops
        in_fp32 = all(dtypes == {torch.float32} and not autocast for _, dtypes, autocast in recorder.calls)
        assert in_fp32 == expect_fp32, recorder.calls


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_weight_gets_fp32_sigma(dtype):
    """A bf16/fp16 weight (as CUDA autocast or a *-true precision hands it over) is normalised by an
    fp32 sigma of that weight and comes back in its own dtype."""
    torch.manual_seed(0)
    weight = torch.randn(16, 32)
    norm = FP32SpectralNorm(weight.to(dtype)).eval()
    low = weight.to(dtype)
    reference = FP32SpectralNorm(weight).eval()
    reference._u.copy_(norm._u), reference._v.copy_(norm._v)
    out = norm(low)
    assert out.dtype == dtype
    expected = reference(low.float())  # the fp32 computation on the same (rounded) weight
    assert torch.equal(out, expected.to(dtype))
    sigma = low.float().norm() / expected.norm()
    assert sigma.item() == pytest.approx(torch.linalg.matrix_norm(low.float(), ord=2).item(), rel=2e-2)
