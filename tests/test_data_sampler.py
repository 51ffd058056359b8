"""BucketBatchSampler: budget, coverage, determinism, and the DDP contract (disjoint, equal steps)."""

import random

import pytest

from toolkit.data.sampler import BucketBatchSampler


def durations(n=500, seed=0):
    rng = random.Random(seed)
    return [rng.uniform(0.5, 15.0) for _ in range(n)]


def test_each_item_once_and_within_budget():
    d = durations()
    s = BucketBatchSampler(d, max_seconds=60.0, shuffle=True, seed=3)
    batches = list(s)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(d)))
    for b in batches:
        assert len(b) == 1 or max(d[i] for i in b) * len(b) <= 60.0
    assert len(s) == len(batches)


def test_oversized_item_and_batch_cap():
    s = BucketBatchSampler([100.0, 1.0, 1.0, 1.0], max_seconds=10.0, max_batch_size=2, shuffle=False)
    assert list(s) == [[1, 2], [3], [0]]


def test_bucketing_pads_far_less_than_random_batches():
    d = durations(2000)
    s = BucketBatchSampler(d, max_seconds=100.0, shuffle=True, seed=0)

    def padding(batches):
        total = sum(max(d[i] for i in b) * len(b) for b in batches)
        return 1.0 - sum(d) / total

    rng = random.Random(0)
    order = list(range(len(d)))
    rng.shuffle(order)
    sizes = [len(b) for b in s]
    rand, k = [], 0
    for n in sizes:
        rand.append(order[k : k + n])
        k += n
    assert padding(list(s)) < 0.2 < padding(rand)


def test_deterministic_by_seed_and_epoch():
    d = durations()
    a = BucketBatchSampler(d, 60.0, seed=5)
    b = BucketBatchSampler(d, 60.0, seed=5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) != first
    c = BucketBatchSampler(d, 60.0, seed=6)
    assert list(c) != first
    e = BucketBatchSampler(d, 60.0, shuffle=False)
    e.set_epoch(4)
    assert list(e) == list(BucketBatchSampler(d, 60.0, shuffle=False))


@pytest.mark.parametrize("world", [2, 3, 4])
def test_ranks_get_disjoint_equal_shares(world):
    d = durations(301)
    for epoch in (0, 1):
        shares = []
        for rank in range(world):
            s = BucketBatchSampler(d, 45.0, seed=1, num_replicas=world, rank=rank)
            s.set_epoch(epoch)
            shares.append(list(s))
        assert len({len(x) for x in shares}) == 1 and len(shares[0]) == len(s)
        seen = [i for share in shares for b in share for i in b]
        assert len(seen) == len(set(seen)), "ranks overlap"
        whole = BucketBatchSampler(d, 45.0, seed=1, num_replicas=world, rank=0)
        whole.set_epoch(epoch)
        dropped = len(BucketBatchSampler(d, 45.0, seed=1, num_replicas=1).global_batches()) % world
        assert len(whole.global_batches()) % world == 0
        assert dropped < world


def test_eval_mode_gives_every_utterance_exactly_once_across_ranks():
    d = durations(103)
    samplers = [BucketBatchSampler(d, 30.0, seed=2, num_replicas=4, rank=r, drop_uneven=False) for r in range(4)]
    shares = [list(s) for s in samplers]
    assert [len(x) for x in shares] == [len(s) for s in samplers]
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert sorted(i for share in shares for b in share for i in b) == list(range(103))  # no repeats


def test_eval_mode_splits_batches_so_every_rank_has_one():
    samplers = [BucketBatchSampler([1.0] * 5, 30.0, num_replicas=4, rank=r, shuffle=False, drop_uneven=False)
                for r in range(4)]  # fmt: skip
    shares = [list(s) for s in samplers]
    assert all(len(x) == 1 for x in shares)
    assert sorted(i for share in shares for b in share for i in b) == list(range(5))


def test_unsorted_batches_mix_lengths_and_keep_the_contract():
    d = durations(1000)
    s = BucketBatchSampler(d, max_seconds=120.0, num_buckets=1, sorted_batches=False, seed=4)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(len(d)))
    assert all(len(b) == 1 or max(d[i] for i in b) * len(b) <= 120.0 for b in batches)
    assert list(BucketBatchSampler(d, 120.0, num_buckets=1, sorted_batches=False, seed=4)) == batches

    def spread(batches):  # mean length range inside a batch, seconds
        multi = [b for b in batches if len(b) > 1]
        return sum(max(d[i] for i in b) - min(d[i] for i in b) for b in multi) / len(multi)

    # a random batch spans most of the corpus's 0.5-15 s; a length-sorted one almost nothing
    assert spread(batches) > 8.0
    assert spread(list(BucketBatchSampler(d, 120.0, num_buckets=1, seed=4))) < 0.5
