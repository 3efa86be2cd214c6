"""The `vidgan` command: `data moving-mnist`, help texts, one-line errors, dispatch to LightningCLI."""

from __future__ import annotations

import numpy as np
import pytest

import vidgan.cli
from vidgan.cli import main


def test_data_moving_mnist_writes_both_files(tmp_path, capsys):
    argv = ["data", "moving-mnist", "--out", str(tmp_path), "--train", "3", "--test", "2", "--frames", "5"]
    assert main([*argv, "--size", "40", "--digits", "1", "--seed", "2", "--quiet"]) == 0
    train, test = np.load(tmp_path / "train.npy"), np.load(tmp_path / "test.npy")
    assert train.shape == (5, 3, 40, 40) and test.shape == (5, 2, 40, 40) and train.dtype == np.uint8
    assert "train.npy (N=3)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flag", "value", "message"), [("--size", "20", "size=20"), ("--train", "0", "train=0")]
)
def test_bad_values_give_one_line_errors_naming_the_field(tmp_path, capsys, flag, value, message):
    assert main(["data", "moving-mnist", "--out", str(tmp_path), flag, value, "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vidgan: error:") and message in err and "\n" not in err


@pytest.mark.parametrize("argv", [["--help"], ["data", "--help"], ["data", "moving-mnist", "--help"]])
def test_every_level_has_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: vidgan")
    assert {"--help": "fit", "data": "moving-mnist"}.get(argv[0], "--digits") in out


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2 and "invalid choice: 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["fit", "validate", "test"])
def test_lightning_commands_go_to_the_lightning_runner_with_the_whole_argv(command, monkeypatch):
    calls = []
    monkeypatch.setattr(vidgan.cli, "lightning_main", lambda argv: calls.append(argv) or 7)
    assert main([command, "--config", "configs/vidgan/tiny.yaml"]) == 7
    assert calls == [[command, "--config", "configs/vidgan/tiny.yaml"]]
