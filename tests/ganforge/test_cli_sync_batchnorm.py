"""`trainer.sync_batchnorm: true` reaches ganforge's own normalisation layers through the CLI."""

from __future__ import annotations

import pytest

from ganforge.examples.ring import RingDataModule, RingGAN
from ganforge.layer_sync import BatchStatisticsSync
from ganforge.lightning_cli import GANForgeCLI


def layer_sync(tmp_path, *args: str):  # noqa: ANN201
    argv = ["--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}", *args]
    cli = GANForgeCLI(RingGAN, RingDataModule, args=argv, run=False, parser_kwargs={"exit_on_error": False})
    return cli.trainer._accelerator_connector._layer_sync


@pytest.mark.parametrize(("switch", "expected"), [("true", BatchStatisticsSync), ("false", type(None))])
def test_the_switch_installs_ganforge_layer_sync_only_when_on(tmp_path, switch: str, expected: type) -> None:
    assert type(layer_sync(tmp_path, f"--trainer.sync_batchnorm={switch}")) is expected
