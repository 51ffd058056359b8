"""Adapter that gives PyTorch's fused (cuDNN on GPU) RNNs the toolkit's layer contract."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .base import RecurrentLayer, State


class TorchRNN(RecurrentLayer):
    """Wraps an ``nn.RNN``/``nn.LSTM``/``nn.GRU`` built by the subclass into ``self.rnn``.

    Padded batches go through ``pack_padded_sequence``, so the backward direction reverses each
    sequence within its own length and the final state is taken at each sequence's last step.
    The state is batch-first: (B, layers * directions, H), a pair of those for LSTM.
    """

    rnn: nn.RNNBase

    def _forward(self, x: Tensor, lengths: Tensor, state: State) -> tuple[Tensor, State]:
        hx = None
        if state is not None:
            expected = (x.shape[0], self.num_layers * self.num_directions, self.hidden_size)
            parts = 2 if isinstance(self.rnn, nn.LSTM) else 1
            if (
                not isinstance(state, (tuple, list))
                or len(state) != parts
                or any(not isinstance(s, Tensor) or tuple(s.shape) != expected for s in state)
            ):
                raise ValueError(
                    f"{self.layer_name}: state must be the state returned by this layer: "
                    f"{parts} tensor(s) of shape {expected}"
                )
            hx = tuple(s.transpose(0, 1).contiguous() for s in state)
            hx = hx if isinstance(self.rnn, nn.LSTM) else hx[0]
        steps = x.shape[1]
        if int(lengths.min()) == steps:
            y, hn = self.rnn(x, hx)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, hn = self.rnn(packed, hx)
            y, _ = pad_packed_sequence(out, batch_first=True, total_length=steps)
        hn = hn if isinstance(hn, tuple) else (hn,)
        return y, tuple(h.transpose(0, 1) for h in hn)

    def flatten(self) -> None:
        if torch.cuda.is_available():
            self.rnn.flatten_parameters()
