"""`t2i export-clip`: the CLIP state dict of a clip-stage checkpoint, loadable by `clip.load`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ganforge.cli import alias, parse_options


@dataclass(frozen=True)
class ExportOptions:
    """`t2i export-clip` options."""

    ckpt_path: str
    out: str


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="t2i export-clip", description="Write the CLIP state dict of a clip-stage checkpoint."
    )
    alias(
        parser, "--ckpt_path", "--ckpt", required=True, help="training checkpoint of the clip stage (.ckpt)"
    )
    parser.add_argument(
        "--out", required=True, help="output .pt file, loadable by clip.load(path, jit=False)"
    )
    return parser


def main(argv: list[str]) -> None:
    """`t2i export-clip ...` (argv after the command); errors are raised for the `t2i` error guard."""
    from t2i.clip_stage import export_clip

    options = parse_options(build_parser(), ExportOptions, argv)
    print(f"export-clip: {export_clip(options.ckpt_path, options.out)}")
