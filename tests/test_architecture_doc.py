"""docs/architecture.md names only what exists: modules, classes, methods and files."""

from __future__ import annotations

import functools
import importlib
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
QUALIFIED = re.compile(r"(?:ganforge|vidgan|t2i)(?:\.\w+)+")  # `vidgan.module.VideoGAN.predict`
MEMBER = re.compile(r"([A-Z]\w*)\.(\w+)")  # `GANModule._d_step`: a class named in full elsewhere
FILE = re.compile(r"[\w./-]+\.(?:py|md|yaml)")


def spans() -> list[str]:
    return re.findall(r"`([^`\n]+)`", DOC.read_text())


def resolve(name: str) -> Any:
    """The object a dotted name refers to: the longest importable module prefix, then attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            value = getattr(value, attr)
        return value
    raise ModuleNotFoundError(name)


@functools.cache
def named_classes() -> dict[str, type]:
    """Classes named in full in the doc (prefixes of its qualified names), plus Lightning's Trainer.

    A qualified name that does not resolve is left out here; `test_qualified_names_resolve` reports it.
    """
    import pytorch_lightning as pl

    classes: dict[str, type] = {"Trainer": pl.Trainer}
    for span in filter(QUALIFIED.fullmatch, spans()):
        parts = span.split(".")
        for cut in range(2, len(parts) + 1):
            try:
                value = resolve(".".join(parts[:cut]))
            except (ModuleNotFoundError, AttributeError):
                break
            if isinstance(value, type):
                classes[value.__name__] = value
    return classes


@pytest.mark.parametrize("name", sorted(set(filter(QUALIFIED.fullmatch, spans()))))
def test_qualified_names_resolve(name: str):
    resolve(name)


@pytest.mark.parametrize("span", sorted(set(filter(MEMBER.fullmatch, spans()))))
def test_class_members_exist(span: str):
    cls, attr = MEMBER.fullmatch(span).groups()
    classes = named_classes()
    assert cls in classes, f"{cls} is not named in full (package.module.{cls}) anywhere in the doc"
    assert hasattr(classes[cls], attr), f"{cls} has no {attr}"


@pytest.mark.parametrize("path", sorted(set(filter(FILE.fullmatch, spans()))))
def test_named_files_exist(path: str):
    assert (ROOT / path).is_file()


def test_the_doc_names_enough_to_check():
    names = spans()
    assert sum(map(bool, map(QUALIFIED.fullmatch, names))) >= 30
    assert sum(map(bool, map(MEMBER.fullmatch, names))) >= 20
