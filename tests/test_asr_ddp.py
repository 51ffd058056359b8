"""CTC loss under DDP: 2 CPU processes (gloo) on half batches give the gradient of one process on the
whole batch (the loss is normalised by the global batch size, and DDP averages gradients)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from toolkit.data.dataset import SpeechBatch


def build(root):
    from toolkit.tasks.asr import CTCTask

    torch.manual_seed(0)
    task = CTCTask(str(root / "tokenizer"), str(root / "cmvn.json"), encoder="lstm", hidden_size=8, num_layers=1,
                   dropout=0.0, specaugment=None)  # fmt: skip
    task.log = lambda *a, **k: None
    return task.double()  # float64: the comparison is then exact, not limited by float32 sums


def batch(sizes=(3, 5)):
    g = torch.Generator().manual_seed(1)
    n = sum(sizes)
    lengths = torch.randint(30, 60, (n,), generator=g)
    tokens = torch.randint(3, 6, (n, 4), generator=g)  # the tokenizer's three characters (vocabulary of 6)
    token_lens = torch.randint(1, 5, (n,), generator=g)
    feats = torch.randn(n, 60, 80, generator=g, dtype=torch.float64)
    return SpeechBatch([str(i) for i in range(n)], feats, lengths, tokens, token_lens, ["x"] * n)


def part(b: SpeechBatch, sl: slice) -> SpeechBatch:
    return SpeechBatch(b.ids[sl], b.feats[sl], b.feat_lens[sl], b.tokens[sl], b.token_lens[sl], b.texts[sl])


def worker(rank: int, root, port: int, out) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    task = build(root)
    # DDP starts every rank from rank 0's weights; do the same rather than trust seeds across processes
    task.load_state_dict(torch.load(root / "init.pt"))
    full = batch()
    mine = part(full, slice(0, 3) if rank == 0 else slice(3, 8))  # unequal shares, as buckets give
    task.training_step(mine, 0).backward()
    grads = []
    for p in task.parameters():
        g = p.grad.clone()
        dist.all_reduce(g)
        grads.append(g / 2)  # what DDP does: the mean over ranks
    if rank == 0:
        out.put([g.numpy() for g in grads])
    dist.destroy_process_group()


def test_two_processes_match_one(tmp_path, asr_corpus):
    task = build(tmp_path)
    torch.save(task.state_dict(), tmp_path / "init.pt")
    task.training_step(batch(), 0).backward()
    single = [p.grad for p in task.parameters()]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = 29500 + os.getpid() % 1000
    mp.start_processes(worker, args=(tmp_path, port, out), nprocs=2, start_method="spawn")
    multi = out.get(timeout=60)
    for a, b in zip(single, multi, strict=True):
        torch.testing.assert_close(a, torch.from_numpy(b), rtol=1e-7, atol=1e-7)
