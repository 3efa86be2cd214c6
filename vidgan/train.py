"""`vidgan fit | validate | test`: LightningCLI over vidgan's modules and `VideoDataModule`.

The config chooses the model by class path, so one command trains DVD-GAN-FP or the baseline:

    model:
      class_path: vidgan.module.VideoGAN            # or vidgan.baseline_module.ConvGRUBaseline
      init_args: {...}
"""

from __future__ import annotations

import warnings

from ganforge.cli import GANForgeCLI, run_guarded, teardown_distributed, trainer_defaults
from vidgan.data import VideoDataModule
from vidgan.module import VideoPredictionModule

PROG = "vidgan"
UNION_ERROR = "Does not validate against any of the Union subtypes"


def model_error(err: ValueError) -> ValueError:
    """The model's own message from jsonargparse's multi-line wrapper around a failed `class_path` model.

    With `subclass_mode_model`, a ValueError raised by e.g. `VideoGAN.__init__` reaches us as
    "Does not validate against any of the Union subtypes ... Errors: - <message> - Expected a
    NoneType ..."; the one-line error must show <message>.
    """
    if not str(err).startswith(UNION_ERROR):
        return err
    for line in str(err).splitlines():
        line = line.strip()
        if line.startswith("- ") and "NoneType" not in line:
            return ValueError(f"model: {line[2:]}")
    return err


def lightning_main(argv: list[str]) -> int:
    """LightningCLI on argv, e.g. `fit --config configs/vidgan/moving_mnist.yaml`; returns the exit code."""

    def run() -> None:
        try:
            cli()
        except ValueError as err:
            raise model_error(err) from err

    def cli() -> None:
        with warnings.catch_warnings():
            # argv is passed explicitly (tests call this directly); Lightning warns when sys.argv has it too.
            warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter.*")
            GANForgeCLI(
                VideoPredictionModule,
                VideoDataModule,
                subclass_mode_model=True,
                args=list(argv),
                trainer_defaults=trainer_defaults(PROG),
                save_config_kwargs={"overwrite": True},
                parser_kwargs={"exit_on_error": False, "prog": PROG},
                auto_configure_optimizers=False,
            )

    try:
        return run_guarded(PROG, run)
    finally:
        teardown_distributed()
