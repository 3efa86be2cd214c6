"""`ganforge.checkpoint` owns the checkpoint plumbing: header, restore, artefacts, safe reads.

The last tests read the package sources: no file outside `ganforge/checkpoint.py` builds a
`ganforge` header or calls `torch.load` (under any name).
"""

import ast
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from ganforge import __version__
from ganforge.checkpoint import (
    FORMAT_VERSION,
    atomic_torch_save,
    load_artifact,
    load_checkpoint,
    load_state_file,
    read_header,
    restore,
    save_artifact,
    stamp_header,
)
from ganforge.errors import CheckpointError, NotGANForgeCheckpointError, WrongFamilyError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ganforge", "vidgan", "t2i")
OWNER = "ganforge/checkpoint.py"


class Tiny(pl.LightningModule):
    """A LightningModule as the families write them: hyper-parameters rebuild it."""

    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Linear(width, width)
        self.head = nn.Linear(width, 1)


def tiny_checkpoint(width: int = 3, seed: int = 0) -> dict:
    """A Lightning-style checkpoint of a Tiny, with LightningCLI's `_class_path` beside the arguments."""
    torch.manual_seed(seed)
    module = Tiny(width)
    hparams = {**module.hparams, "_class_path": "tests.Tiny"}
    return {"hyper_parameters": hparams, "state_dict": module.state_dict()}


def assert_one_line_naming(err: pytest.ExceptionInfo, path: Path) -> None:
    message = str(err.value)
    assert f"'{path}'" in message and len(message.splitlines()) == 1, message


# ---------------------------------------------------------------------------------------------- header
def test_header_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    ckpt = tiny_checkpoint()
    stamp_header(ckpt, "tiny", batches_seen=7, rng_states=[torch.arange(3)])
    atomic_torch_save(ckpt, path)
    header = read_header(load_checkpoint(path, family="tiny"))
    assert header["format_version"] == FORMAT_VERSION and header["ganforge_version"] == __version__
    assert header["family"] == "tiny" and header["batches_seen"] == 7
    assert torch.equal(header["rng_states"][0], torch.arange(3))
    assert read_header({"state_dict": {}}) == {} and read_header({"ganforge": "not a dict"}) == {}


def test_wrong_family_and_missing_header_are_one_line_errors(tmp_path: Path) -> None:
    stamped, plain = tmp_path / "vidgan.ckpt", tmp_path / "plain.pt"
    ckpt = tiny_checkpoint()
    stamp_header(ckpt, "vidgan")
    torch.save(ckpt, stamped)
    torch.save(tiny_checkpoint()["state_dict"], plain)
    with pytest.raises(
        WrongFamilyError, match="is not a t2i-image checkpoint \\(its family is 'vidgan'\\)"
    ) as err:
        load_checkpoint(stamped, family="t2i-image")
    assert_one_line_naming(err, stamped)
    with pytest.raises(NotGANForgeCheckpointError, match="no 'ganforge' header") as err:
        load_checkpoint(plain)
    assert_one_line_naming(err, plain)


# ---------------------------------------------------------------------------------------------- restore
def test_restore_rebuilds_the_module_and_loads_its_weights(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(width=4, seed=1)
    module = restore(Tiny, ckpt, tmp_path / "a.ckpt")
    assert isinstance(module, Tiny) and module.hparams.width == 4
    assert all(torch.equal(v, ckpt["state_dict"][k]) for k, v in module.state_dict().items())


def test_restore_with_a_prefix_builds_only_that_network(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(width=4, seed=2)
    net = restore(Tiny, ckpt, tmp_path / "a.ckpt", prefix="net", build=lambda width: nn.Linear(width, width))
    assert isinstance(net, nn.Linear)
    assert torch.equal(net.weight, ckpt["state_dict"]["net.weight"])
    assert torch.equal(net.bias, ckpt["state_dict"]["net.bias"])


def test_restore_errors_are_one_line_and_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    mismatched = tiny_checkpoint(width=3)
    mismatched["hyper_parameters"]["width"] = 5
    with pytest.raises(
        CheckpointError, match="does not rebuild a Tiny: Error\\(s\\) in loading.*size mismatch"
    ) as err:
        restore(Tiny, mismatched, path)
    assert_one_line_naming(err, path)
    with pytest.raises(CheckpointError, match="does not rebuild a Tiny: .*Missing key") as err:
        restore(
            Tiny, tiny_checkpoint(), path, prefix="ema.model", build=lambda width: nn.Linear(width, width)
        )
    assert_one_line_naming(err, path)
    unknown = tiny_checkpoint()
    unknown["hyper_parameters"]["depth"] = 2
    with pytest.raises(
        CheckpointError, match="does not rebuild a Tiny: .*unexpected keyword argument 'depth'"
    ) as err:
        restore(Tiny, unknown, path)
    assert_one_line_naming(err, path)
    with pytest.raises(CheckpointError, match="lacks the Tiny hyper_parameters or state_dict") as err:
        restore(Tiny, {"state_dict": {}}, path)
    assert_one_line_naming(err, path)


# ---------------------------------------------------------------------------------------------- artefacts
def test_artifact_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "judges" / "soa.pt"
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    config = {"num_shapes": 3, "steps": 20}
    assert save_artifact(path, "t2i-judge-soa", config, net.state_dict(), trained_on="shapes") == path
    loaded_config, state = load_artifact(path, "t2i-judge-soa")
    assert loaded_config == config
    copy = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    copy.load_state_dict(state)  # strict
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in copy.state_dict().items())
    header = read_header(load_checkpoint(path))
    assert header["family"] == "t2i-judge-soa" and header["trained_on"] == "shapes"


def test_artifact_errors_are_one_line_and_name_the_file(tmp_path: Path) -> None:
    path, missing, bare = tmp_path / "fd.pt", tmp_path / "nowhere.pt", tmp_path / "bare.pt"
    save_artifact(path, "vidgan-fd-local", {"channels": 1}, nn.Linear(2, 2).state_dict())
    with pytest.raises(WrongFamilyError, match="is not a t2i-judge-fd_local checkpoint") as err:
        load_artifact(path, "t2i-judge-fd_local")
    assert_one_line_naming(err, path)
    with pytest.raises(CheckpointError, match="does not exist") as err:
        load_artifact(missing, "vidgan-fd-local")
    assert_one_line_naming(err, missing)
    headed = {"state_dict": {}}
    stamp_header(headed, "vidgan-fd-local")
    torch.save(headed, bare)
    with pytest.raises(
        CheckpointError, match="vidgan-fd-local file '.*' lacks its config or state_dict"
    ) as err:
        load_artifact(bare, "vidgan-fd-local")
    assert_one_line_naming(err, bare)


# ------------------------------------------------------------------------------------------ third-party files
def test_load_state_file_reads_third_party_state_dicts_safely(tmp_path: Path) -> None:
    path = tmp_path / "inception.pth"
    state = nn.Linear(4, 2).state_dict()
    torch.save(state, path)
    for mmap in (False, True):
        loaded = load_state_file(path, what="--inception", mmap=mmap)
        assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="^--inception '.*' is not a readable torch checkpoint") as err:
        load_state_file(text, what="--inception")
    assert_one_line_naming(err, text)
    with pytest.raises(CheckpointError, match="^--inception '.*' is a directory") as err:
        load_state_file(tmp_path, what="--inception")
    assert_one_line_naming(err, tmp_path)
    evil = tmp_path / "evil.pt"
    torch.save({"weights": state, "object": Path("x")}, evil)
    with pytest.raises(CheckpointError, match="refused by the safe loader .*pathlib") as err:
        load_state_file(evil, what="--inception")
    assert_one_line_naming(err, evil)


# -------------------------------------------------------------------------------------------- package sources
LOADERS = {"load"}
HEADER_NAMES = {"HEADER_KEY", "FORMAT_VERSION"}
HEADER_STRINGS = {"format_version", "ganforge_version"}


def is_torch_load(node: ast.expr) -> bool:
    """`torch.load` or `torch.serialization.load` (also reached as `torch.serialization` by any path)."""
    if not (isinstance(node, ast.Attribute) and node.attr in LOADERS):
        return False
    owner = node.value
    return (isinstance(owner, ast.Name) and owner.id == "torch") or (
        isinstance(owner, ast.Attribute) and owner.attr == "serialization"
    )


def plumbing_violations(source: str) -> list[str]:
    """Where `source` calls torch.load (under any name) or builds / reads a ganforge header by hand."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if is_torch_load(node):
            found.append(f"{line}: torch.load")
        elif isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.serialization"):
            found += [f"{line}: from {node.module} import load" for a in node.names if a.name in LOADERS]
        elif isinstance(node, ast.ImportFrom) and node.module == "ganforge.checkpoint":
            found += [f"{line}: imports {a.name}" for a in node.names if a.name in HEADER_NAMES]
        elif isinstance(node, ast.Name) and node.id in HEADER_NAMES:
            found.append(f"{line}: {node.id}")
        elif isinstance(node, ast.Constant) and node.value in HEADER_STRINGS:
            found.append(f"{line}: {node.value!r}")
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            if node.slice.value == "ganforge":
                found.append(f'{line}: ["ganforge"]')
        elif isinstance(node, ast.Dict):
            found += [
                f'{line}: {{"ganforge": ...}}'
                for k in node.keys
                if isinstance(k, ast.Constant) and k.value == "ganforge"
            ]
    return found


@pytest.mark.parametrize(
    "snippet",
    [
        "state = torch.load(path, weights_only=True)",
        "read = torch.load\nstate = read(path)",
        "from torch import load as read",
        "import torch.serialization\nx = torch.serialization.load(p)",
        "from ganforge.checkpoint import HEADER_KEY as KEY",
        "ckpt['ganforge'] = {'family': 'x'}",
        "ckpt = {'ganforge': header}",
        "header = {'format_version': 1}",
        "version = ckpt['ganforge'].get('format_version', 0)",
    ],
)
def test_the_source_check_catches_hand_made_plumbing(snippet: str) -> None:
    assert plumbing_violations(snippet)


def test_the_source_check_passes_third_party_loaders_and_prose() -> None:
    source = (
        '"""`torch.load(weights_only=True)` refuses it."""\nnet = torch.jit.load(p)\nmodel = clip.load(p)\n'
    )
    assert plumbing_violations(source + 'family = "ganforge"\nnp.load(p)\n') == []


def test_no_package_file_outside_checkpoint_py_does_checkpoint_plumbing() -> None:
    offenders = {}
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            name = file.relative_to(ROOT).as_posix()
            if name == OWNER:
                continue
            found = plumbing_violations(file.read_text())
            if found:
                offenders[name] = found
    assert not offenders, (
        f"use ganforge.checkpoint (stamp_header, read_header, load_state_file, ...): {offenders}"
    )
