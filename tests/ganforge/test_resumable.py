"""ResumableSampler / ResumableDataLoader: the epoch position survives a state_dict round trip."""

from __future__ import annotations

import pytest
import torch

from ganforge.resumable import ResumableDataLoader, ResumableSampler

DATA = list(range(10))


def loader(data=DATA, batch_size: int = 2, **sampler_kwargs) -> ResumableDataLoader:
    return ResumableDataLoader(
        data, batch_size=batch_size, drop_last=True, sampler=ResumableSampler(data, seed=3, **sampler_kwargs)
    )


def batches(dl: ResumableDataLoader) -> list[list[int]]:
    return [b.tolist() for b in dl]


def test_a_new_loader_continues_after_the_saved_batches():
    straight = loader()
    straight.sampler.set_epoch(1)
    whole = batches(straight)
    assert sorted(sum(whole, [])) == DATA  # a permutation of epoch 1
    first = loader()
    first.sampler.set_epoch(1)
    it = iter(first)
    seen = [next(it).tolist(), next(it).tolist()]
    state = first.state_dict()
    assert state == {"epoch": 1, "batches": 2, "batch_size": 2, "num_replicas": 1}
    resumed = loader()
    resumed.load_state_dict(state)
    rest = batches(resumed)
    assert seen + rest == whole
    assert resumed.state_dict()["batches"] == 5 and len(resumed) == 5  # the length stays the full epoch
    resumed.sampler.set_epoch(2)  # the next epoch starts from its beginning
    assert len(batches(resumed)) == 5


def test_a_finished_epoch_resumes_at_the_next_one():
    dl = loader()
    dl.load_state_dict({"epoch": 0, "batches": 5, "batch_size": 2})
    assert dl.sampler.epoch == 1
    expected = loader()
    expected.sampler.set_epoch(1)
    assert batches(dl) == batches(expected)


def test_order_is_a_function_of_seed_and_epoch_only():
    a, b = loader(), loader()
    a.sampler.set_epoch(4)
    b.sampler.set_epoch(4)
    assert batches(a) == batches(b)
    b.sampler.set_epoch(5)
    assert batches(a) != batches(b)


def test_ranks_are_disjoint_and_fresh_indices_grow_with_the_epoch():
    ranks = [
        ResumableSampler(DATA, num_replicas=2, rank=r, shuffle=False, fresh_each_epoch=True) for r in (0, 1)
    ]
    for sampler in ranks:
        sampler.set_epoch(3)
    a, b = list(ranks[0]), list(ranks[1])
    assert sorted(a + b) == list(range(30, 40))


def test_worker_seeds_do_not_touch_the_global_rng():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    iter(loader())
    assert torch.equal(torch.rand(1), expected)


def test_another_batch_size_resumes_after_about_the_same_items_with_a_warning():
    dl = loader(batch_size=3)
    with pytest.warns(UserWarning, match="saved with batch_size=2 on 1 process"):
        dl.load_state_dict({"epoch": 0, "batches": 2, "batch_size": 2, "num_replicas": 1})
    assert len(batches(dl)) == 2 and dl.sampler.start == 3  # 4 items seen -> 1 batch of 3 skipped


def test_without_a_resumable_sampler_it_is_a_plain_loader():
    plain = ResumableDataLoader(DATA, batch_size=2)  # what Lightning's overfit_batches rebuilds
    assert not plain.resumable and plain.state_dict() == {} and len(batches(plain)) == 5
    with pytest.warns(UserWarning, match="is not restored"):
        plain.load_state_dict({"epoch": 0, "batches": 1, "batch_size": 2})
