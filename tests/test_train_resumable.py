"""ResumableLoader: a loader restored from its state continues with exactly the next batch."""

import itertools
import json

import torch
from torch.utils.data import TensorDataset

from toolkit.train import ResumableLoader
from toolkit.train.optim import build_optimizer


def batches(loader, n=None):
    """The first n batches (all when n is None), fetching no more than that from the loader."""
    return [b for (b,) in itertools.islice(loader, n)]


def test_restored_loader_continues_with_the_next_batch():
    data = TensorDataset(torch.arange(23))
    straight = ResumableLoader(data, batch_size=4, shuffle=True, seed=3)
    full = batches(straight)
    assert len(full) == len(straight) == 5  # drop_last: 23 // 4
    first = ResumableLoader(data, batch_size=4, shuffle=True, seed=3)
    head = batches(first, 2)
    state = first.state_dict()
    assert state == {"epoch": 0, "batches": 2}
    resumed = ResumableLoader(data, batch_size=4, shuffle=True, seed=3)
    resumed.load_state_dict(json.loads(json.dumps(state)))  # states travel through checkpoints
    tail = batches(resumed)
    assert [b.tolist() for b in head + tail] == [b.tolist() for b in full]
    # the next epoch starts from the beginning again, with its own order
    resumed.sampler.set_epoch(1)
    again = batches(resumed)
    assert len(again) == 5 and [b.tolist() for b in again] != [b.tolist() for b in full]


def test_shuffle_order_depends_on_seed_and_epoch_only():
    data = TensorDataset(torch.arange(50))
    a = ResumableLoader(data, batch_size=10, seed=1)
    b = ResumableLoader(data, batch_size=10, seed=1)
    assert torch.equal(torch.cat(batches(a)), torch.cat(batches(b)))
    b.sampler.set_epoch(1)
    assert not torch.equal(torch.cat(batches(a)), torch.cat(batches(b)))
    assert sorted(torch.cat(batches(b)).tolist()) == list(range(50))


def test_step_schedule_divides_the_rate_at_milestones():
    p = torch.nn.Parameter(torch.zeros(1))
    conf = build_optimizer([p], "adam", lr=1.0, lr_milestones=[2, 4], lr_gamma=0.1)
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(5):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates == [1.0, 1.0, 0.1, 0.1, 0.010000000000000002]
    assert conf["lr_scheduler"]["interval"] == "step"
