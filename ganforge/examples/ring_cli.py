"""`ganforge ring` and `ganforge fit | validate | test | predict`: the ring example's commands.

`ganforge.cli.COMMANDS` points here; Lightning loads only when a command runs, not for `--help`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from ganforge.cli import parse_options


@dataclasses.dataclass(frozen=True)
class RingOptions:
    """`ganforge ring` options."""

    out: str
    steps: int = 8000
    seed: int = 0
    loss: str = "hinge"
    quiet: bool = False


def ring_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganforge ring", description="Train the 8-Gaussians ring toy GAN through the core."
    )
    parser.add_argument("--out", required=True, help="output directory (created)")
    parser.add_argument("--steps", type=int, default=8000, help="generator steps (default 8000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loss", choices=["hinge", "ns", "wgan-gp"], default="hinge")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str]) -> int:
    """`ganforge ring ...`: train the ring GAN, write metrics.json and samples.png."""
    from ganforge.examples.ring import train_ring

    options = parse_options(ring_parser(), RingOptions, argv)
    if options.steps < 1:
        print(f"ganforge: error: --steps={options.steps} must be >= 1", file=sys.stderr)
        return 2
    metrics = train_ring(
        options.out, steps=options.steps, seed=options.seed, loss=options.loss, progress=not options.quiet
    )
    print(
        f"ring: modes_covered={metrics['modes_covered']}/8 "
        f"high_quality_fraction={metrics['high_quality_fraction']:.3f} -> {options.out}/metrics.json, "
        f"{options.out}/samples.png"
    )
    return 0


def lightning_main(argv: list[str]) -> int:
    """`ganforge fit | validate | test | predict`: LightningCLI over the ring GAN."""
    from ganforge.examples.ring import RingDataModule, RingGAN
    from ganforge.lightning_cli import run_lightning_cli

    return run_lightning_cli("ganforge", RingGAN, RingDataModule, argv, family="ring")
