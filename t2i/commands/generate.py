"""`t2i generate`: captions in, a PNG grid and/or one PNG per image out, with the layouts.

    t2i generate --ckpt t2i.ckpt "a red circle to the left of a blue square" "a green triangle" \
        --samples 4 --seed 0 --out grid.png --layout-out layouts.png
    t2i generate --ckpt t2i.ckpt --captions-file captions.txt --samples 1 --out-dir gen/

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
from pathlib import Path
from typing import Any, TextIO

import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import draw_bounding_boxes, make_grid

from ganforge.devices import DEVICE_HELP, resolve_device
from ganforge.errors import run_guarded
from t2i.layout import Box
from t2i.layout.draw import class_colour

PROG = "t2i generate"
DRAW_SIZE = 128  # layouts are drawn on images upscaled to this side so labels stay readable


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
    parser.add_argument("--ckpt", required=True, help="t2i bundle or image-stage checkpoint (.ckpt)")
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
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
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
        raise ValueError(f"--captions-file '{path}' line {line} is not valid UTF-8") from None
    kept = [(number, line.strip()) for number, line in enumerate(lines, start=1) if line.strip()]
    if not kept:
        raise ValueError(f"--captions-file '{path}' holds no captions (one per line expected)")
    return [caption for _, caption in kept], [number for number, _ in kept]


def layout_record(layout: list[Box]) -> list[dict[str, Any]]:
    """Boxes as plain data: label and x, y, w, h (top-left corner, fractions of the image side)."""
    return [{"label": b.label, "x": b.x, "y": b.y, "w": b.w, "h": b.h} for b in layout]


def generate_batches(
    model: Any, captions: list[str], args: argparse.Namespace
) -> Iterator[tuple[int, int, Any]]:
    """(first caption index, seed, `Generated`) per batch of --batch-size captions; batch i uses seed + i."""
    for index, start in enumerate(range(0, len(captions), args.batch_size)):
        seed = args.seed + index
        chunk = captions[start : start + args.batch_size]
        yield start, seed, model.generate(chunk, num_samples=args.samples, seed=seed)


def check_args(args: argparse.Namespace) -> None:
    for name in ("samples", "batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}={getattr(args, name)}; expected >= 1")
    if bool(args.captions) == (args.captions_file is not None):
        raise ValueError("give captions as arguments or with --captions-file (one of the two)")
    if args.out is None and args.out_dir is None:
        raise ValueError("nothing to write: give --out (a grid PNG) and/or --out-dir (one PNG per image)")
    if args.layout_out is not None and args.out is None:
        raise ValueError("--layout-out draws the --out grid; give --out too")
    for path in (args.out, args.layout_out):
        if path is not None and Path(path).suffix.lower() != ".png":
            raise ValueError(f"output '{path}' must be a .png file")


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


def run(args: argparse.Namespace) -> None:
    from t2i.pipeline import TextToImage, check_captions

    check_args(args)
    if args.captions_file is not None:
        captions, lines = read_captions_file(Path(args.captions_file))
    else:
        captions, lines = args.captions, None
    captions = check_captions(captions)  # before the (slow) model load
    model = TextToImage.from_checkpoint(args.ckpt, resolve_device(args.device), args.layout_ckpt)
    tiles, drawn, written = [], [], []
    with ExitStack() as stack:
        jsonl = None
        if args.out_dir is not None:
            out_dir = Path(args.out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            jsonl = stack.enter_context((out_dir / "captions.jsonl").open("w", encoding="utf-8"))
        for first, seed, out in generate_batches(model, captions, args):
            images = out.images.flatten(0, 1)  # (B * S, 3, H, W), caption-major
            layouts = [layout for per_caption in out.layouts for layout in per_caption]
            if args.out is not None:
                tiles.append(to_uint8(images))
            if args.layout_out is not None:
                drawn.extend(draw_layout(image, layout) for image, layout in zip(images, layouts))
            if jsonl is not None:
                batch = {"captions": captions, "lines": lines, "first": first, "seed": seed}
                write_images(out_dir, jsonl, images, layouts, batch | {"samples": args.samples})
    if args.out is not None:
        written.append(save_grid(torch.cat(tiles), args.samples, Path(args.out)))
    if args.layout_out is not None:
        written.append(save_grid(torch.stack(drawn), args.samples, Path(args.layout_out)))
    if args.out_dir is not None:
        written.append(Path(args.out_dir) / "captions.jsonl")
    print(f"{PROG}: {len(captions)} caption(s) x {args.samples} sample(s) -> {', '.join(map(str, written))}")


def main(argv: list[str]) -> int:
    """`t2i generate ...` (argv without the command name); returns the exit code."""
    args = build_parser().parse_args(argv)
    return run_guarded(PROG, lambda: run(args))
