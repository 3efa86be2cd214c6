"""`t2i generate`: captions in, a PNG grid and/or one PNG per image out, with the layouts.

    t2i generate --ckpt_path t2i.ckpt "a red circle to the left of a blue square" "a green triangle" \
        --samples 4 --seed 0 --out grid.png --layout-out layouts.png
    t2i generate --ckpt_path t2i.ckpt --captions-file captions.txt --samples 1 --out-dir gen/

`--out` writes a grid (a row per caption, a column per sample); `--layout-out` draws the same grid
with each image's layout boxes outlined and labelled. `--out-dir` writes `NNNNNN_S.png` per caption
N and sample S, plus `captions.jsonl`, one line per image: file, caption, caption index (and line of
`--captions-file`), sample, seed and the layout's boxes, so any external tool (FID, CLIP score) can
score the run. Captions are generated `--batch-size` at a time, batch i with seed `--seed` + i.
Captions that are empty or not valid UTF-8 stop the command with a one-line error; over-long
captions are truncated to the text encoder's context length with a warning.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import draw_bounding_boxes, make_grid

from ganforge.cli import alias, parse_options
from ganforge.devices import DEFAULT_DEVICE, DEVICE_HELP, resolve_device
from ganforge.errors import UserError, run_guarded
from t2i.models.layout import Box
from t2i.models.layout.draw import class_colour

PROG = "t2i generate"
DRAW_SIZE = 128  # layouts are drawn on images upscaled to this side so labels stay readable


@dataclass(frozen=True)
class GenerateOptions:
    """`t2i generate` options (see `build_parser` for each one's meaning)."""

    ckpt_path: str
    captions: list[str]
    captions_file: str | None = None
    layout_ckpt: str | None = None
    samples: int = 1
    seed: int = 0
    out: str | None = None
    layout_out: str | None = None
    out_dir: str | None = None
    batch_size: int = 64
    device: str = DEFAULT_DEVICE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Generate images for captions with a t2i checkpoint and write them as a PNG grid "
        "(--out: a row per caption, a column per sample) and/or as one PNG per image with a captions.jsonl "
        "of captions and layouts (--out-dir).",
    )
    parser.add_argument("captions", nargs="*", help="one or more captions (quote each)")
    parser.add_argument(
        "--captions-file", default=None, help="UTF-8 text file, one caption per line (blank lines skipped)"
    )
    alias(parser, "--ckpt_path", "--ckpt", required=True, help="t2i bundle or image-stage checkpoint (.ckpt)")
    parser.add_argument(
        "--layout-ckpt", default=None, help="layout-stage checkpoint (default: the one the image stage names)"
    )
    parser.add_argument("--samples", type=int, default=1, help="images per caption (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same images")
    parser.add_argument("--out", default=None, help="PNG file for the image grid")
    parser.add_argument("--layout-out", default=None, help="PNG file for the grid with layout boxes drawn")
    parser.add_argument(
        "--out-dir", default=None, help="folder for one PNG per caption and sample, plus captions.jsonl"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="captions per generation batch")
    parser.add_argument("--device", default=DEFAULT_DEVICE, help=DEVICE_HELP)
    return parser


def to_uint8(images: Tensor) -> Tensor:
    """Float images (..., 3, H, W) in [0, 1] -> uint8."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8)


def draw_layout(image: Tensor, layout: list[Box], size: int = DRAW_SIZE) -> Tensor:
    """An image (3, H, W) in [0, 1], upscaled (nearest) to `size`, with its boxes and labels drawn; uint8."""
    big = torch.nn.functional.interpolate(image[None], size=(size, size), mode="nearest")[0]
    pixels = to_uint8(big)
    if not layout:
        return pixels
    xyxy = torch.tensor([[b.x, b.y, b.x + b.w, b.y + b.h] for b in layout]) * size
    xyxy[:, 2:] = torch.maximum(xyxy[:, 2:] - 1, xyxy[:, :2])  # the last pixel inside the box
    colours = [tuple(int(255 * c) for c in class_colour(b.label)) for b in layout]
    return draw_bounding_boxes(pixels, xyxy, labels=[b.label for b in layout], colors=colours, width=2)


def save_grid(tiles: Tensor, columns: int, path: Path) -> Path:
    """uint8 tiles (N, 3, H, W) as a PNG grid of `columns` columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = make_grid(tiles, nrow=columns, padding=2, pad_value=255)
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path)
    return path


def read_captions_file(path: Path) -> tuple[list[str], list[int]]:
    """Captions of a UTF-8 file, one per non-blank line, and their 1-based line numbers."""
    if not path.is_file():
        raise FileNotFoundError(f"--captions-file '{path}' does not exist")
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise UserError(f"--captions-file '{path}' line {line} is not valid UTF-8") from None
    kept = [(number, line.strip()) for number, line in enumerate(lines, start=1) if line.strip()]
    if not kept:
        raise UserError(f"--captions-file '{path}' holds no captions (one per line expected)")
    return [caption for _, caption in kept], [number for number, _ in kept]


def layout_record(layout: list[Box]) -> list[dict[str, Any]]:
    """Boxes as plain data: label and x, y, w, h (top-left corner, fractions of the image side)."""
    return [{"label": b.label, "x": b.x, "y": b.y, "w": b.w, "h": b.h} for b in layout]


def generate_batches(
    model: Any, captions: list[str], options: GenerateOptions
) -> Iterator[tuple[int, int, Any]]:
    """(first caption index, seed, `Generated`) per batch of --batch-size captions; batch i uses seed + i."""
    for index, start in enumerate(range(0, len(captions), options.batch_size)):
        seed = options.seed + index
        chunk = captions[start : start + options.batch_size]
        yield start, seed, model.generate(chunk, num_samples=options.samples, seed=seed)


def check_options(options: GenerateOptions) -> None:
    for name in ("samples", "batch_size"):
        if getattr(options, name) < 1:
            raise UserError(f"--{name.replace('_', '-')}={getattr(options, name)}; expected >= 1")
    if bool(options.captions) == (options.captions_file is not None):
        raise UserError("give captions as arguments or with --captions-file (one of the two)")
    if options.out is None and options.out_dir is None:
        raise UserError("nothing to write: give --out (a grid PNG) and/or --out-dir (one PNG per image)")
    if options.layout_out is not None and options.out is None:
        raise UserError("--layout-out draws the --out grid; give --out too")
    for path in (options.out, options.layout_out):
        if path is not None and Path(path).suffix.lower() != ".png":
            raise UserError(f"output '{path}' must be a .png file")


def write_images(
    out_dir: Path, jsonl: TextIO, images: Tensor, layouts: list[list[Box]], batch: dict[str, Any]
) -> None:
    """PNGs of images (B * S, 3, H, W), caption-major, and one captions.jsonl line each.

    `batch`: captions (all of them), lines (their --captions-file lines or None), first (index of the
    batch's first caption), seed, samples (S).
    """
    for j, (image, layout) in enumerate(zip(images, layouts)):
        index, sample = batch["first"] + j // batch["samples"], j % batch["samples"]
        name = f"{index:06d}_{sample}.png"
        Image.fromarray(to_uint8(image).permute(1, 2, 0).numpy()).save(out_dir / name)
        record = {"file": name, "caption": batch["captions"][index], "index": index}
        if batch["lines"] is not None:
            record["line"] = batch["lines"][index]
        record |= {"sample": sample, "seed": batch["seed"], "layout": layout_record(layout)}
        jsonl.write(json.dumps(record, ensure_ascii=False) + "\n")


def run(options: GenerateOptions) -> None:
    from t2i.pipeline import TextToImage, check_captions

    check_options(options)
    if options.captions_file is not None:
        captions, lines = read_captions_file(Path(options.captions_file))
    else:
        captions, lines = options.captions, None
    captions = check_captions(captions)  # before the (slow) model load
    model = TextToImage.from_checkpoint(
        options.ckpt_path, resolve_device(options.device), options.layout_ckpt
    )
    tiles, drawn, written = [], [], []
    with ExitStack() as stack:
        jsonl = None
        if options.out_dir is not None:
            out_dir = Path(options.out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            jsonl = stack.enter_context((out_dir / "captions.jsonl").open("w", encoding="utf-8"))
        for first, seed, out in generate_batches(model, captions, options):
            images = out.images.flatten(0, 1)  # (B * S, 3, H, W), caption-major
            layouts = [layout for per_caption in out.layouts for layout in per_caption]
            if options.out is not None:
                tiles.append(to_uint8(images))
            if options.layout_out is not None:
                drawn.extend(draw_layout(image, layout) for image, layout in zip(images, layouts))
            if jsonl is not None:
                batch = {"captions": captions, "lines": lines, "first": first, "seed": seed}
                write_images(out_dir, jsonl, images, layouts, batch | {"samples": options.samples})
    if options.out is not None:
        written.append(save_grid(torch.cat(tiles), options.samples, Path(options.out)))
    if options.layout_out is not None:
        written.append(save_grid(torch.stack(drawn), options.samples, Path(options.layout_out)))
    if options.out_dir is not None:
        written.append(Path(options.out_dir) / "captions.jsonl")
    print(
        f"{PROG}: {len(captions)} caption(s) x {options.samples} sample(s) -> {', '.join(map(str, written))}"
    )


def main(argv: list[str]) -> int:
    """`t2i generate ...` (argv without the command name); returns the exit code."""
    options = parse_options(build_parser(), GenerateOptions, argv)
    return run_guarded(PROG, lambda: run(options))
