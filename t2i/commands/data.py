"""`t2i data shapes`: render the shapes-scenes dataset in COCO format (no Lightning import)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ganforge.cli import parse_options
from t2i.data.shapes_scenes import ShapesSpec, render_shapes


@dataclass(frozen=True)
class ShapesOptions:
    """`t2i data shapes` options."""

    out: str
    train: int
    val: int
    size: int
    seed: int


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t2i data", description="Write datasets for t2i.")
    sub = parser.add_subparsers(dest="dataset", required=True)
    shapes = sub.add_parser(
        "shapes", help="render the shapes-scenes dataset in COCO format (docs/t2i_model.md)"
    )
    shapes.add_argument("--out", required=True, help="output directory (created)")
    defaults = ShapesSpec()
    shapes.add_argument(
        "--train", type=int, default=defaults.train, help="train images (default %(default)s)"
    )
    shapes.add_argument("--val", type=int, default=defaults.val, help="val images (default %(default)s)")
    shapes.add_argument(
        "--size", type=int, default=defaults.size, help="image side in pixels (default %(default)s)"
    )
    shapes.add_argument("--seed", type=int, default=defaults.seed, help="renderer seed (default %(default)s)")
    return parser


def main(argv: list[str]) -> None:
    """`t2i data shapes ...` (argv after `data`); errors are raised for the `t2i` error guard."""
    options = parse_options(build_parser(), ShapesOptions, argv)
    spec = ShapesSpec(train=options.train, val=options.val, size=options.size, seed=options.seed)
    root = render_shapes(options.out, spec)
    print(
        f"shapes: {spec.train} train + {spec.val} val images ({spec.size}px) -> "
        f"{root}/annotations, {root}/images"
    )
