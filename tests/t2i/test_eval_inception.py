"""`--inception` files are recognised by content: TF-Inception gives fid and is, others fd_* (not FID)."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
import torch
import torch_fidelity.feature_extractor_inceptionv3 as fidelity
from image_testing import tiny_pipeline
from torchvision.models import inception_v3

from t2i.cli import main
from t2i.eval import inception
from t2i.eval.inception import inception_score, inspect_inception


def random_tf_inception_state() -> dict[str, torch.Tensor]:
    """torch-fidelity's own FeatureExtractorInceptionV3, randomly initialised: the format, other weights."""
    with (
        mock.patch.object(fidelity, "load_state_dict_from_url", lambda *a, **k: {}),
        mock.patch.object(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None),
    ):
        torch.manual_seed(0)
        net = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    return torch.nn.Module.state_dict(net)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inception")
    paths = {
        "pipeline": tiny_pipeline(folder),
        "tf": folder / "weights.pth",
        "tv": folder / "pt_inception.pth",
    }
    torch.save(random_tf_inception_state(), paths["tf"])
    torch.manual_seed(0)  # a torchvision net under the TF file's name: the name must not matter
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=True).state_dict(), paths["tv"])
    return paths


def test_tf_inception_format_is_recognised_and_an_unpublished_hash_is_said(files: dict) -> None:
    found = inspect_inception(files["tf"])
    assert (found.kind, found.fd_name, found.published) == ("tf_inception", "fid", False)
    assert "sha256" in found.warning() and "not the published file's (6726825d" in found.warning()
    with mock.patch.object(inception, "published_sha256_prefix", lambda: found.sha256[:8]):
        assert found.published and found.warning() is None


def test_a_torchvision_inception_is_not_fid(files: dict) -> None:
    found = inspect_inception(files["tv"])
    assert (found.kind, found.fd_name) == ("inception_v3", "fd_inception_v3")
    assert "is a torchvision inception_v3 state dict" in found.warning()
    assert "fd_inception_v3 is a Fréchet distance, not FID" in found.warning()  # t2i eval prints it


def test_other_files_are_refused_naming_the_file(tmp_path: Path) -> None:
    wrong = tmp_path / "resnet.pt"
    torch.save({"fc.weight": torch.zeros(10, 4)}, wrong)
    with pytest.raises(ValueError, match=r"'.*resnet.pt' is not an Inception-v3 state dict: 1 tensors"):
        inspect_inception(wrong)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"--inception '.*notes.pt' is not a readable torch checkpoint"):
        inspect_inception(text)


def test_inception_score_is_exp_of_the_class_entropy_for_confident_predictions() -> None:
    # Confident one-hot predictions: each split scores exp(H(class histogram)); 4 balanced classes -> 4.
    logits = torch.full((1000, 1008), -30.0)
    logits[torch.arange(1000), torch.arange(1000) % 4] = 0
    scores = inception_score(logits, seed=0)
    assert scores["is"] == pytest.approx(4.0, abs=0.1) and 0 < scores["is_std"] < 0.1
    same = inception_score(torch.zeros(20, 1008), seed=0)  # one prediction for all: IS is exactly 1
    assert same == {"is": pytest.approx(1.0), "is_std": pytest.approx(0.0, abs=1e-9)}
    with pytest.raises(ValueError, match="needs >= 10 images"):
        inception_score(logits[:9], seed=0)


def eval_args(files: dict, out: Path, inception_file: Path, captions: int) -> list[str]:
    pipeline = files["pipeline"]
    return [
        "eval", "--ckpt_path", str(pipeline["ckpt"]), "--data", str(pipeline["data"]), "--out", str(out),
        "--clip", str(pipeline["judge_clip"]), "--inception", str(inception_file), "--soa-steps", "2",
        "--max-captions", str(captions), "--batch-size", "10", "--quiet",
    ]  # fmt: skip


def test_eval_reports_fid_and_is_with_tf_inception_weights(files: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "metrics.json"
    assert main(eval_args(files, out, files["tf"], captions=10)) == 0
    result = json.loads(out.read_text())
    for condition in ("predicted_layout", "ground_truth_layout"):
        scores = result[condition]
        assert scores["fid"] > 0 and scores["is"] >= 1 and scores["is_std"] >= 0
        assert "fd_local" not in scores and not any(k.startswith("fd_") for k in scores)
    assert result["real"]["is"] >= 1  # the ceiling, on the real images
    record = result["judges"]["fid"]
    assert record["kind"] == "tf_inception" and not record["published_weights"]
    assert "not the published file's" in record["warning"]
    assert "not the published file's" in capsys.readouterr().err


def test_eval_refuses_too_few_captions_for_the_inception_score(files: dict, tmp_path: Path, capsys) -> None:
    assert main(eval_args(files, tmp_path / "m.json", files["tf"], captions=4)) == 1
    assert "Inception Score needs >= 10 captions" in capsys.readouterr().err
