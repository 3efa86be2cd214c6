"""The README vidgan API example (docs/vidgan_api_snippet.py) runs as written and prints its comments."""

import re
import runpy
from pathlib import Path

from fixtures_eval import tiny_checkpoint

from vidgan.data import write_moving_mnist

SNIPPET = Path(__file__).resolve().parents[2] / "docs" / "vidgan_api_snippet.py"


def test_api_snippet_runs_and_prints_the_shapes_in_its_comments(tmp_path, monkeypatch, capsys):
    # What the README's CLI steps leave behind: a checkpoint where `vidgan fit` writes it, and test data.
    tiny_checkpoint(tmp_path / "runs" / "vidgan" / "moving_mnist_tiny" / "checkpoints" / "last.ckpt")
    write_moving_mnist(tmp_path / "data" / "mnist", train=1, test=8, frames=20, size=64, digits=1)
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(SNIPPET), run_name="__main__")
    printed = capsys.readouterr().out.strip().splitlines()
    promised = re.findall(r"^print\(.*\)  # (.*)$", SNIPPET.read_text(), flags=re.MULTILINE)
    assert len(promised) == 2 and printed == promised
