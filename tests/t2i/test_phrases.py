"""Phrase grounding: each layout object's phrase found in its caption (`t2i.models.phrases`)."""

from __future__ import annotations

import torch

from t2i.models.image.attention import ObjectTextAttention
from t2i.models.phrases import object_phrases, phrase_captions

NAMES = ["__background__", "circle", "square", "traffic light"]


def test_two_objects_of_one_class_get_their_own_phrases_by_colour() -> None:
    caption = "A red circle to the left of a blue circle."
    # Slot 0 is the blue circle: its phrase is the second mention, with "blue" and not "red".
    assert object_phrases(caption, ["circle", "circle"], ["blue", "red"]) == [
        "to the left of a blue circle",
        "a red circle",
    ]
    # Without colours the given order decides: the first slot takes the first mention.
    assert object_phrases(caption, ["circle", "circle"]) == ["a red circle", "to the left of a blue circle"]


def test_three_objects_and_names_the_caption_lacks() -> None:
    caption = "there is a green square above a circle, and a red traffic light left of the circle"
    assert object_phrases(caption, ["circle", "traffic light", "square", "square"]) == [
        "above a circle",
        ", and a red traffic light",
        "there is a green square",
        None,  # a second square is never mentioned
    ]


def test_phrase_captions_per_slot() -> None:
    captions = ["a red circle to the left of a blue square", "two squares"]
    labels = torch.tensor([[2, 1, 0], [2, 0, 0]])
    phrases = phrase_captions(captions, labels, labels > 0, NAMES)
    assert phrases == ["to the left of a blue square", "a red circle", "", "two squares", "", ""]


def test_object_attention_reads_its_own_phrase() -> None:
    torch.manual_seed(0)
    attention = ObjectTextAttention(query_dim=8, token_dim=16, out_dim=4, phrases=True)
    queries = torch.randn(2, 3, 8)
    tokens, padding = torch.randn(2, 3, 5, 16), torch.rand(2, 3, 5) > 0.6
    padding[..., 0] = False  # every phrase has a real token
    out = attention(queries, tokens, padding)
    assert out.shape == (2, 3, 4)
    for b in range(2):
        for n in range(3):  # each object alone against its own phrase
            alone = attention(queries[b : b + 1, n : n + 1], tokens[b : b + 1, n], padding[b : b + 1, n])
            torch.testing.assert_close(out[b, n], alone[0, 0])
