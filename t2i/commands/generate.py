"""`t2i generate`: captions in, a PNG grid of generated images out (a row per caption, a column per sample).

    t2i generate --ckpt t2i.ckpt "a red circle to the left of a blue square" "a green triangle" \
        --samples 4 --seed 0 --out grid.png --layout-out layouts.png

`--layout-out` draws the same grid with each image's layout boxes outlined and labelled. Captions
that are empty or not valid UTF-8 stop the command with a one-line error; over-long captions are
truncated to the text encoder's context length with a warning.
"""

from __future__ import annotations

import argparse
from pathlib import Path

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
        "(a row per caption, a column per sample).",
    )
    parser.add_argument("captions", nargs="+", help="one or more captions (quote each)")
    parser.add_argument("--ckpt", required=True, help="t2i bundle or image-stage checkpoint (.ckpt)")
    parser.add_argument(
        "--layout-ckpt", default=None, help="layout-stage checkpoint (default: the one the image stage names)"
    )
    parser.add_argument("--samples", type=int, default=1, help="images per caption (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same images")
    parser.add_argument("--out", required=True, help="PNG file for the image grid")
    parser.add_argument("--layout-out", default=None, help="PNG file for the grid with layout boxes drawn")
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


def run(args: argparse.Namespace) -> None:
    from t2i.pipeline import TextToImage, check_captions

    if args.samples < 1:
        raise ValueError(f"--samples={args.samples}; expected >= 1")
    for path in (args.out, args.layout_out):
        if path is not None and Path(path).suffix.lower() != ".png":
            raise ValueError(f"output '{path}' must be a .png file")
    captions = check_captions(args.captions)  # before the (slow) model load
    model = TextToImage.from_checkpoint(args.ckpt, resolve_device(args.device), args.layout_ckpt)
    out = model.generate(captions, num_samples=args.samples, seed=args.seed)
    images = out.images.flatten(0, 1)  # (B * S, 3, H, W), caption-major
    written = [save_grid(to_uint8(images), args.samples, Path(args.out))]
    if args.layout_out is not None:
        layouts = [layout for per_caption in out.layouts for layout in per_caption]
        drawn = torch.stack([draw_layout(img, layout) for img, layout in zip(images, layouts)])
        written.append(save_grid(drawn, args.samples, Path(args.layout_out)))
    print(f"{PROG}: {len(captions)} caption(s) x {args.samples} sample(s) -> {', '.join(map(str, written))}")


def main(argv: list[str]) -> int:
    """`t2i generate ...` (argv without the command name); returns the exit code."""
    args = build_parser().parse_args(argv)
    return run_guarded(PROG, lambda: run(args))
