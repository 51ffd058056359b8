"""The interface a language model offers a decoder for shallow fusion, and its bridge into
torchaudio's flashlight beam search (``CTCDecoderLM``).

A fusion LM scores token sequences left to right, one batch of hypotheses at a time:

* ``initial_state(batch_size)``: the state before any token (after the sentence start);
* ``next_log_probs(state) -> (N, V)``: log p(next token | history) for each of N states;
* ``advance(state, tokens (N,)) -> state``: the states after appending one token each.

States are nested batch-first tensors (see ``toolkit.nn.base``), so a decoder can pick, copy or
drop hypotheses with ``select_state``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor
from torchaudio.models.decoder import CTCDecoderLM, CTCDecoderLMState

from toolkit.nn.base import State


@runtime_checkable
class FusionLM(Protocol):
    vocab_size: int

    def initial_state(self, batch_size: int) -> State: ...

    def next_log_probs(self, state: State) -> Tensor: ...

    def advance(self, state: State, tokens: Tensor) -> State: ...


class FlashlightLMBridge(CTCDecoderLM):
    """Lets flashlight's beam search call a :class:`FusionLM`, one hypothesis at a time.

    ``to_lm(decoder_token_index) -> lm token id`` maps the decoder's token (a character or word
    piece in lexicon-free decoding, a word in lexicon decoding) to the LM's vocabulary; ``None``
    means the token costs nothing in the LM (e.g. the blank). ``end_id`` is scored at the end
    of a hypothesis (the LM's end-of-sentence token), if given.

    Each flashlight state caches the LM state after its history and the LM's next-token
    log-probabilities, so every (history, token) pair is computed once.
    """

    def __init__(self, lm: FusionLM, to_lm: Callable[[int], int | None], end_id: int | None = None):
        super().__init__()
        self.lm, self.to_lm, self.end_id = lm, to_lm, end_id
        self.cache: dict[CTCDecoderLMState, tuple[State, Tensor]] = {}

    @torch.no_grad()
    def start(self, start_with_nothing: bool) -> CTCDecoderLMState:
        self.cache.clear()
        state = CTCDecoderLMState()
        lm_state = self.lm.initial_state(1)
        self.cache[state] = (lm_state, self.lm.next_log_probs(lm_state)[0])
        return state

    @torch.no_grad()
    def score(self, state: CTCDecoderLMState, usr_token_idx: int) -> tuple[CTCDecoderLMState, float]:
        lm_id = self.to_lm(usr_token_idx)
        lm_state, log_probs = self.cache[state]
        if lm_id is None:
            return state, 0.0
        child = state.child(usr_token_idx)
        if child not in self.cache:
            new_state = self.lm.advance(lm_state, torch.tensor([lm_id]))
            self.cache[child] = (new_state, self.lm.next_log_probs(new_state)[0])
        return child, float(log_probs[lm_id])

    @torch.no_grad()
    def finish(self, state: CTCDecoderLMState) -> tuple[CTCDecoderLMState, float]:
        if self.end_id is None:
            return state, 0.0
        return state, float(self.cache[state][1][self.end_id])
