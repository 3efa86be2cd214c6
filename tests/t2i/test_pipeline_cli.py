"""`t2i generate` and `t2i eval` end to end on a tiny rendered shapes set and untrained tiny stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from image_testing import tiny_pipeline
from PIL import Image

from t2i.cli import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return tiny_pipeline(tmp_path_factory.mktemp("t2i_cli"))


def test_help_lists_generate_and_eval(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out
    assert "generate" in listed and "eval" in listed
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert "--layout-out" in capsys.readouterr().out


def test_generate_writes_a_grid_and_a_layout_picture(setup: dict, tmp_path: Path, capsys) -> None:
    out, layouts = tmp_path / "grid.png", tmp_path / "layouts.png"
    args = [
        "generate",
        "--ckpt_path",
        str(setup["ckpt"]),
        "a red circle",
        "a blue square above a green circle",
    ]
    assert (
        main([*args, "--samples", "3", "--seed", "1", "--out", str(out), "--layout-out", str(layouts)]) == 0
    )
    with Image.open(out) as grid:
        assert grid.size == (3 * 34 + 2, 2 * 34 + 2)  # 32 px tiles, 2 px padding: 3 columns, 2 rows
    with Image.open(layouts) as drawn:
        assert drawn.size == (3 * 130 + 2, 2 * 130 + 2)  # drawn at 128 px
    assert "2 caption(s) x 3 sample(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["   "], "caption 0 is empty"),
        (["a red circle", "--out", "x.jpg"], "must be a .png file"),
        ([b"\xffbad".decode("utf-8", "surrogateescape")], "caption 0 is not valid UTF-8"),
    ],
)
def test_generate_bad_input_is_one_line(
    setup: dict, tmp_path: Path, capsys, extra: list[str], message: str
) -> None:
    args = ["generate", "--ckpt_path", str(setup["ckpt"]), "--out", str(tmp_path / "g.png"), *extra]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("t2i generate: error:") and message in err and "\n" not in err


def eval_args(setup: dict, out: Path) -> list[str]:
    """`t2i eval` of the fixture's image checkpoint on its data, writing `out`."""
    return ["eval", "--ckpt_path", str(setup["ckpt"]), "--data", str(setup["data"]), "--out", str(out)]


def test_eval_writes_all_metrics_for_both_layout_conditions(setup: dict, tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    args = eval_args(setup, out)
    fast = ["--clip", str(setup["judge_clip"]), "--soa-steps", "20", "--fd-steps", "10", "--quiet"]
    assert main([*args, *fast, "--batch-size", "4"]) == 0
    result = json.loads(out.read_text())
    assert result["images"] == 10
    for condition in ("predicted_layout", "ground_truth_layout"):
        scores = result[condition]
        for key in (
            "soa_c",
            "soa_i",
            "color_binding",
            "fd_local",
            "clip_score",
            "r_precision",
            "relation_accuracy",
        ):
            assert key in scores
        assert scores["fd_local"] > 0 and -1 <= scores["clip_score"] <= 1
    assert result["ground_truth_layout"]["relation_accuracy"] == 1.0  # true boxes satisfy their captions
    assert 0 <= result["real"]["soa_c"] <= 1 and "soa_c_vs_real" in result
    assert "Not FID" in result["judges"]["fd_local"]["note"] and result["judges"]["soa"]["trained_now"]
    # A second run reuses the cached judges and, with the same seed, repeats every number.
    again = tmp_path / "again.json"
    assert (
        main([*args[:-1], str(again), *fast, "--batch-size", "4", "--judges", str(tmp_path / "judges")]) == 0
    )
    second = json.loads(again.read_text())
    assert not second["judges"]["soa"]["trained_now"]
    assert second["predicted_layout"] == result["predicted_layout"]


def test_eval_refuses_the_conditioning_clip_as_judge(setup: dict, tmp_path: Path, capsys) -> None:
    args = eval_args(setup, tmp_path / "m.json")
    args += ["--clip", str(setup["conditioning_clip"]), "--soa-steps", "2", "--fd-steps", "2", "--quiet"]
    assert main(args) == 1
    assert "is the CLIP that conditions the generator" in capsys.readouterr().err


def test_eval_reports_fd_torchscript_not_fid_for_a_torchscript_net(
    setup: dict, tmp_path: Path, capsys
) -> None:
    class Features(torch.nn.Module):  # a TorchScript stand-in with the StyleGAN2-ADA calling convention
        def forward(self, x: torch.Tensor, return_features: bool = True) -> torch.Tensor:
            return x.float().mean(dim=(2, 3)) / 255.0

    inception = tmp_path / "inception.pt"
    torch.jit.script(Features()).save(str(inception))
    out = tmp_path / "metrics.json"
    args = [*eval_args(setup, out), "--quiet"]
    args += [
        "--clip",
        str(setup["judge_clip"]),
        "--inception",
        str(inception),
        "--soa-steps",
        "2",
        "--max-captions",
        "6",
    ]
    assert main(args) == 0
    result = json.loads(out.read_text())
    scores = result["predicted_layout"]
    assert scores["fd_torchscript"] > 0 and not {"fid", "is", "fd_local"} & scores.keys()
    assert result["judges"]["fd_torchscript"]["inception"] == str(inception)
    assert "not FID" in result["judges"]["fd_torchscript"]["warning"]
    assert "warning:" in capsys.readouterr().err


def test_eval_trains_a_judge_clip_with_its_own_seed_when_none_is_given(setup: dict, tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    args = [*eval_args(setup, out), "--quiet"]
    args += ["--clip-steps", "2", "--soa-steps", "2", "--fd-steps", "2", "--max-captions", "4"]
    assert main(args) == 0
    record = json.loads(out.read_text())["judges"]["clip"]
    assert record["seed"] == 1 and Path(record["file"]).is_file()  # cached for the next evaluation
