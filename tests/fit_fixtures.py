"""Shared by the ``recur fit`` tests: a tiny adding-problem config that trains in seconds, and one torch
thread while a test runs (bit-exact comparisons between runs need a fixed reduction order)."""

from __future__ import annotations

import pytest
import torch

TINY_ADDING = {
    "model": {
        "class_path": "toolkit.tasks.seq.SeqTask",
        "init_args": {
            "input_size": 2, "num_outputs": 1, "loss": "mse", "encoder": "indrnn", "hidden_size": 8,
            "num_layers": 2, "encoder_opts": {"gamma": 2.0, "max_len": 12}, "lr": 0.01,
        },
    },
    "data": {
        "class_path": "toolkit.seqdata.adding.AddingData",
        "init_args": {"seq_len": 12, "batch_size": 8, "train_size": 400, "val_size": 16, "test_size": 16},
    },
    "trainer": {
        "accelerator": "cpu", "max_steps": 12, "val_check_interval": 4, "check_val_every_n_epoch": None,
        "enable_model_summary": False, "log_every_n_steps": 2,
    },
}  # fmt: skip


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
