"""The `t2i` command: `fit | validate | test` through LightningCLI, plus data and export tools.

The YAML chooses the stage by class path, e.g. for the small CLIP:

    model:
      class_path: t2i.clip_stage.ContrastiveCLIP
      init_args: {embed_dim: 128, ...}
    data:
      class_path: t2i.data.CocoLayoutDataModule
      init_args: {data_dir: data/shapes, ...}
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import pytorch_lightning as pl

from ganforge.cli import run_guarded, run_lightning_cli
from t2i.data.shapes import ShapesSpec, render_shapes

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test")
# Commands with their own parser, imported when they run: name -> (module with main(argv), help).
COMMANDS = {
    "generate": (
        "t2i.commands.generate",
        "captions -> PNG grid (--out) or PNGs + captions.jsonl (--out-dir, --captions-file): "
        't2i generate --ckpt C "caption" --out OUT.png',
    ),
    "eval": (
        "t2i.commands.evaluate",
        "SOA, FID + IS (TF-Inception) or fd_*, CLIP score: t2i eval --ckpt C --data DIR --out m.json",
    ),
}


def run_stage_cli(argv: Sequence[str]) -> int:
    """LightningCLI in subclass mode: any LightningModule / LightningDataModule named by the config."""
    return run_lightning_cli(
        "t2i",
        pl.LightningModule,
        pl.LightningDataModule,
        argv,
        family="t2i",
        subclass_mode_model=True,
        subclass_mode_data=True,
    )


def _data_shapes(args: argparse.Namespace) -> None:
    spec = ShapesSpec(train=args.train, val=args.val, size=args.size, seed=args.seed)
    root = render_shapes(args.out, spec)
    print(
        f"shapes: {spec.train} train + {spec.val} val images ({spec.size}px) -> "
        f"{root}/annotations, {root}/images"
    )


def _export_clip(args: argparse.Namespace) -> None:
    from t2i.clip_stage import export_clip

    print(f"export-clip: {export_clip(args.ckpt, args.out)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="t2i",
        description="Text-to-image (Obj-GAN style). `t2i fit --config configs/t2i/X.yaml` trains the stage "
        "the config names (see `t2i fit --help`); `validate` and `test` work the same way.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="write datasets").add_subparsers(dest="dataset", required=True)
    shapes = data.add_parser(
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
    shapes.set_defaults(func=_data_shapes)

    export = sub.add_parser("export-clip", help="write the CLIP state dict of a clip-stage checkpoint")
    export.add_argument("--ckpt", required=True, help="training checkpoint of the clip stage (.ckpt)")
    export.add_argument(
        "--out", required=True, help="output .pt file, loadable by clip.load(path, jit=False)"
    )
    export.set_defaults(func=_export_clip)
    for name, (_, text) in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)  # listed in --help; main() dispatches them
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LIGHTNING_SUBCOMMANDS:
        return run_stage_cli(argv)
    if argv and argv[0] in COMMANDS:
        return importlib.import_module(COMMANDS[argv[0]][0]).main(argv[1:])
    args = build_parser().parse_args(argv)
    return run_guarded("t2i", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
