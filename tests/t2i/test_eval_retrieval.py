"""r_precision against hand-computed cases, its tie rule and chance level."""

from __future__ import annotations

import pytest
import torch

from t2i.eval.retrieval import r_precision


def test_hand_computed_with_every_other_caption_as_distractor() -> None:
    # With num_candidates = N every other caption is a distractor, so no sampling is involved.
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    text = torch.tensor([[1.0, 0.1], [1.0, 0.2], [1.0, 0.9]])
    # image 0: own 0.995 beats 0.98, 0.74 -> hit; image 1: own 0.196 < 0.669 (text 2) -> miss;
    # image 2: own cos = 0.9986 beats 0.77 and 0.83 -> hit.
    assert r_precision(image, text, num_candidates=3) == pytest.approx(2 / 3)


def test_perfect_features_score_one_and_scale_does_not_matter(rng: torch.Generator) -> None:
    features = torch.randn(150, 8, generator=rng)
    assert r_precision(features * 5, features, rng=rng) == 1.0


def test_ties_score_as_a_random_tie_break() -> None:
    same = torch.ones(120, 4)
    assert r_precision(same, same, num_candidates=100) == pytest.approx(1 / 100)
    assert r_precision(same, same, num_candidates=10) == pytest.approx(1 / 10)


def test_unrelated_features_score_near_chance(rng: torch.Generator) -> None:
    image, text = torch.randn(2000, 16, generator=rng), torch.randn(2000, 16, generator=rng)
    assert r_precision(image, text, rng=rng) < 0.02  # chance 0.01; 5 standard errors is 0.011


def test_same_generator_seed_same_score(rng: torch.Generator) -> None:
    image, text = torch.randn(300, 16, generator=rng), torch.randn(300, 16, generator=rng)
    text = image + 1.5 * text  # partly matching, so the draw of distractors matters
    first = r_precision(image, text, rng=torch.Generator().manual_seed(1))
    again = r_precision(image, text, rng=torch.Generator().manual_seed(1))
    assert first == again and 0.05 < first < 0.95


def test_bad_inputs_raise_value_errors() -> None:
    with pytest.raises(ValueError, match="num_candidates=100 needs 2 <= it <= N=50"):
        r_precision(torch.zeros(50, 4), torch.zeros(50, 4))
    with pytest.raises(ValueError, match=r"\(50, 4\).*\(50, 3\)"):
        r_precision(torch.zeros(50, 4), torch.zeros(50, 3), num_candidates=10)
