"""`t2i generate --captions-file F --out-dir D`: a PNG per caption and sample, captions.jsonl, read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from image_testing import CLASSES, tiny_pipeline
from PIL import Image

from t2i.cli import main
from t2i.pipeline import TextToImage

CAPTIONS = ["a red circle", "a blue square above a green circle", "a yellow triangle"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_pipeline(tmp_path_factory.mktemp("t2i_generate"))["ckpt"]


def generate_args(ckpt: Path, captions_file: Path, out_dir: Path) -> list[str]:
    """`t2i generate` of every caption in `captions_file` into `out_dir`."""
    return [
        "generate",
        "--ckpt_path",
        str(ckpt),
        "--captions-file",
        str(captions_file),
        "--out-dir",
        str(out_dir),
    ]


def test_captions_file_writes_every_image_and_its_layout(ckpt: Path, tmp_path: Path) -> None:
    captions_file = tmp_path / "captions.txt"
    captions_file.write_text(f"{CAPTIONS[0]}\n\n{CAPTIONS[1]}\n  {CAPTIONS[2]}  \n", encoding="utf-8")
    out = tmp_path / "gen"
    args = generate_args(ckpt, captions_file, out)
    assert main([*args, "--samples", "2", "--batch-size", "2", "--seed", "5"]) == 0
    records = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    assert [(r["index"], r["sample"]) for r in records] == [(i, s) for i in range(3) for s in range(2)]
    assert [r["caption"] for r in records[::2]] == CAPTIONS and [r["line"] for r in records[::2]] == [1, 3, 4]
    assert [r["seed"] for r in records] == [5, 5, 5, 5, 6, 6]  # batch i draws with seed + i
    # Each PNG and layout is what the Python API gives for the same batch and seed.
    model = TextToImage.from_checkpoint(ckpt)
    batches = [model.generate(CAPTIONS[:2], num_samples=2, seed=5), model.generate(CAPTIONS[2:], 2, seed=6)]
    for record in records:
        index, sample = record["index"], record["sample"]
        expected = batches[index // 2]
        image = expected.images[index % 2, sample]
        with Image.open(out / record["file"]) as png:
            pixels = np.asarray(png)
        assert pixels.shape == (32, 32, 3)
        assert np.array_equal(pixels, (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
        boxes = expected.layouts[index % 2][sample]
        assert record["layout"] == [{"label": b.label, "x": b.x, "y": b.y, "w": b.w, "h": b.h} for b in boxes]
        assert all(box["label"] in CLASSES for box in record["layout"])
    assert sorted(p.name for p in out.glob("*.png")) == sorted(r["file"] for r in records)


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (b"a red circle\n\xff\xfe\n", [], "line 2 is not valid UTF-8"),
        (b"\n  \n", [], "holds no captions"),
        (b"a red circle\n", ["a blue square"], "arguments or with --captions-file"),
    ],
)
def test_bad_captions_files_are_one_line_errors(
    ckpt: Path, tmp_path: Path, capsys, content: bytes, extra: list[str], message: str
) -> None:
    captions_file = tmp_path / "captions.txt"
    captions_file.write_bytes(content)
    args = generate_args(ckpt, captions_file, tmp_path)
    assert main([*args, *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("t2i generate: error:") and message in err and "\n" not in err


def test_nothing_to_write_is_an_error(ckpt: Path, capsys) -> None:
    assert main(["generate", "--ckpt_path", str(ckpt), "a red circle"]) == 1
    assert "give --out (a grid PNG) and/or --out-dir" in capsys.readouterr().err
