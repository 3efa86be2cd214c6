"""ganforge.errors: jsonargparse's subclass-mode Union error reduced to its cause and config section."""

import pytorch_lightning as pl

from ganforge.errors import CheckpointError, UserError, UserTypeError, caused_by_user, union_cause

SECTIONS = {"model": pl.LightningModule, "data": pl.LightningDataModule}


def wrapped(subtype: str, cause: str) -> ValueError:
    """The message jsonargparse raises when a subclass-mode `class_path` class's __init__ fails."""
    return ValueError(
        "Does not validate against any of the Union subtypes\n"
        f"Subtypes: [<class '{subtype}'>, <class 'NoneType'>]\n"
        f"Errors:\n  - {cause}\n  - Expected a <class 'NoneType'>\n"
        "Given value type: <class 'jsonargparse._namespace.Namespace'>\n"
        "Given value: Namespace(class_path='a.B', init_args=Namespace(width=100))"
    )


def test_union_cause_names_the_section_and_the_cause():
    model = wrapped("pytorch_lightning.core.module.LightningModule", "clip: text_width=100; expected 64")
    assert union_cause(model, SECTIONS) == "model: clip: text_width=100; expected 64"
    data = wrapped("pytorch_lightning.core.datamodule.LightningDataModule", "data: batch_size=0")
    assert union_cause(data, SECTIONS) == "data: batch_size=0"  # already names its section
    assert union_cause(wrapped("other.Class", "bad value"), SECTIONS) == "bad value"


def test_union_cause_leaves_other_errors_alone():
    assert union_cause(ValueError("lr=-1 must be > 0"), SECTIONS) is None
    only_none = ValueError(
        "Does not validate against any of the Union subtypes\nErrors:\n  - Expected a <class 'NoneType'>"
    )
    assert union_cause(only_none, SECTIONS) is None


def raised_from(cause: Exception) -> ValueError:
    """The Union error as jsonargparse raises it: `from` the error of the class's __init__."""
    try:
        raise wrapped("a.B", str(cause)) from cause
    except ValueError as err:
        return err


def test_caused_by_user_follows_the_chain_to_a_user_error():
    assert caused_by_user(raised_from(UserError("data: batch_size=0")))
    assert caused_by_user(raised_from(FileNotFoundError("data_dir='x' is not a directory")))
    assert caused_by_user(CheckpointError("'a.ckpt' does not exist"))
    assert not caused_by_user(raised_from(ValueError("a bug")))
    assert not caused_by_user(raised_from(TypeError("a bug")))


def test_a_user_type_error_is_a_user_error_and_a_type_error():
    err = UserTypeError("caption 0 is bytes; decode it to str first (UTF-8)")
    assert isinstance(err, UserError) and isinstance(err, TypeError) and caused_by_user(err)
