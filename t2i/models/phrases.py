"""Phrase grounding: each layout object's own phrase of the caption, encoded on its own.

Obj-GAN lets each object's class embedding attend over the whole caption's token features. Two
objects of one class ("a red circle left of a blue circle") then get the same context, and since a
causal text tower's feature at "blue" has read "red" too, every object reads the other objects'
adjectives. Grounded generators (GLIGEN, Li et al. 2023) pair each box with its own phrase, encoded
alone. Here the phrase is found in the caption:

- objects are taken in the order the caption mentions them (`t2i.models.layout.order.mention_order`:
  "<colour> <class name>" when the data gives colours, else the class name; given order on ties);
- each takes the next mention of its class name after the previous object's phrase, and its phrase
  is every word from there up to the end of that mention ("a red circle" | "left of a blue circle");
- an object whose class name is not found (COCO captions skip objects, or say "dogs") gets the whole
  caption, as in Obj-GAN; padding slots get "".

The image stage tokenises these phrases on the host and encodes them with its frozen text tower.
"""

from __future__ import annotations

from collections.abc import Sequence

import regex
from clip.simple_tokenizer import basic_clean, whitespace_clean
from torch import Tensor

from t2i.models.clip_model import bpe_tokenizer
from t2i.models.layout.order import mention_order


def words(text: str) -> list[str]:
    """The pre-tokens ("words") of a text as CLIP's tokenizer splits it, lower-cased."""
    return regex.findall(bpe_tokenizer().pat, whitespace_clean(basic_clean(text)).lower())


def find_words(sequence: Sequence[str], target: Sequence[str], start: int) -> int | None:
    """Index of the first word at or after `start` where the word sequence `target` begins, else None."""
    for i in range(start, len(sequence) - len(target) + 1):
        if list(sequence[i : i + len(target)]) == list(target):
            return i
    return None


def object_phrases(
    caption: str, names: Sequence[str], colors: Sequence[str] | None = None
) -> list[str | None]:
    """Per object, its phrase of the caption, or None when its class name is not found (see the module
    docstring). `names` are the objects' class names in slot order; `colors` their colour attributes
    ("" when unknown)."""
    said = words(caption)
    colors = list(colors) if colors else [""] * len(names)
    phrases: list[str | None] = [None] * len(names)
    cursor = 0  # first word not yet given to a phrase
    for i in mention_order(caption, names, colors):
        target = words(names[i])
        found = find_words(said, target, cursor) if target else None
        if found is not None:
            end = found + len(target)
            phrases[i], cursor = " ".join(said[cursor:end]), end
    return phrases


def phrase_captions(
    captions: Sequence[str],
    labels: Tensor,
    object_mask: Tensor,
    class_names: Sequence[str],
    colors: Sequence[Sequence[str]] | None = None,
) -> list[str]:
    """The text each object slot is drawn from, B * N strings row-major: its phrase, the whole caption
    when none is found, "" for padding slots. labels (B, N) index `class_names` (0 the padding
    class); object_mask (B, N); colors per caption per object slot, or None."""
    labels, object_mask = labels.cpu(), object_mask.cpu()
    out = []
    for b, caption in enumerate(captions):
        slots = [n for n in range(labels.shape[1]) if object_mask[b, n]]
        names = [class_names[int(labels[b, n])] for n in slots]
        row_colors = [colors[b][n] if colors is not None and n < len(colors[b]) else "" for n in slots]
        row = [""] * labels.shape[1]
        for n, phrase in zip(slots, object_phrases(caption, names, row_colors)):
            row[n] = caption if phrase is None else phrase
        out += row
    return out
