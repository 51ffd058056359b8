"""Step-by-step forms of each layer's equation, written from its parameters (for the tests)."""

from __future__ import annotations

import torch
from torch import Tensor


def _loop(steps: int, h: Tensor, step) -> Tensor:
    out = []
    for t in range(steps):
        h = step(t, h)
        out.append(h)
    return torch.stack(out, dim=1)


def layer_norm(norm, v: Tensor) -> Tensor:
    """Ba, Kiros & Hinton 2016: v (..., H) normalised over its last axis, then gain and bias."""
    mean = v.sum(-1, keepdim=True) / v.shape[-1]
    var = ((v - mean) ** 2).sum(-1, keepdim=True) / v.shape[-1]
    return (v - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


def normalise(norm, v: Tensor) -> Tensor:
    """A norm module of the IndRNN layers applied to v (..., H): layer norm, or batch norm in
    evaluation mode (running statistics)."""
    if norm.mode == "layer":
        return layer_norm(norm, v)
    return (v - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) * norm.weight + norm.bias


def indrnn_cell(cell, x: Tensor, h0: Tensor | None = None) -> Tensor:
    """h_t = act(N(W x_t + b) + u h_{t-1}) with N the frame / layer norm, or act(W x_t + b + u h_{t-1})
    followed by the seq / renorm batch norm."""
    act = {"relu": torch.relu, "tanh": torch.tanh, "identity": lambda v: v}[cell.activation]
    bias = cell.input.bias if cell.input.bias is not None else 0.0
    h0 = torch.zeros(x.shape[0], cell.hidden_size, dtype=x.dtype) if h0 is None else h0

    def step(t, h):
        a = x[:, t] @ cell.input.weight.T + bias
        if cell.norm_mode in ("frame", "layer"):  # frame in evaluation mode: running statistics
            a = normalise(cell.norm, a)
        return act(a + cell.u * h)

    y = _loop(x.shape[1], h0, step)
    if cell.norm_mode in ("seq", "renorm"):
        y = normalise(cell.norm, y)
    return y


def indrnn_stack(layer, x: Tensor) -> Tensor:
    """A unidirectional ``indrnn`` stack: each layer's cell on the output of the one below."""
    for (cell,) in layer.layers:
        x = indrnn_cell(cell, x)
    return x


def res_indrnn(layer, x: Tensor) -> Tensor:
    """x_{l+1} = x_l + F(x_l), F = [N -> IndRNN] per unit, then the final N (unidirectional)."""
    h = indrnn_stack(layer.first, x)
    for block in layer.blocks:
        branch = h
        for unit in block:
            branch = indrnn_stack(unit.rnn, normalise(unit.norm, branch))
        h = h + branch
    return normalise(layer.final_norm, h)


def dense_indrnn(layer, x: Tensor) -> Tensor:
    """Each dense layer's [N -> IndRNN] units concatenated to its input; N -> IndRNN transitions."""
    h = indrnn_stack(layer.first, x)
    for block, transition in zip(layer.blocks, layer.transitions, strict=True):
        for dense in block:
            y = h
            for unit in dense.units:
                y = indrnn_stack(unit.rnn, normalise(unit.norm, y))
            h = torch.cat([h, y], dim=-1)
        h = indrnn_stack(transition.rnn, normalise(transition.norm, h))
    return h


def minimalrnn_cell(cell, x: Tensor) -> Tensor:
    def step(t, h):
        z = torch.tanh(x[:, t] @ cell.phi.weight.T + cell.phi.bias)
        u = torch.sigmoid(h @ cell.gate_h.weight.T + z @ cell.gate_z.weight.T + cell.gate_z.bias)
        return u * h + (1 - u) * z

    return _loop(x.shape[1], x.new_zeros(x.shape[0], cell.hidden_size), step)


def cfn_cell(cell, x: Tensor) -> Tensor:
    H = cell.hidden_size
    Vt, Ve = cell.gates_in.weight[:H], cell.gates_in.weight[H:]
    bt, be = cell.gates_in.bias[:H], cell.gates_in.bias[H:]
    Ut, Ue = cell.recurrent.weight[:H], cell.recurrent.weight[H:]

    def step(t, h):
        theta = torch.sigmoid(h @ Ut.T + x[:, t] @ Vt.T + bt)
        eta = torch.sigmoid(h @ Ue.T + x[:, t] @ Ve.T + be)
        return theta * torch.tanh(h) + eta * torch.tanh(x[:, t] @ cell.candidate.weight.T)

    return _loop(x.shape[1], x.new_zeros(x.shape[0], H), step)


def leaky_cell(cell, x: Tensor) -> Tensor:
    alpha = cell.alpha

    def step(t, h):
        f = torch.tanh(x[:, t] @ cell.input.weight.T + cell.input.bias + h @ cell.recurrent.weight.T)
        return alpha * h + (1 - alpha) * f

    return _loop(x.shape[1], x.new_zeros(x.shape[0], cell.hidden_size), step)


def delay_cell(cell, x: Tensor) -> Tensor:
    B, T, _ = x.shape
    hs = {t: x.new_zeros(B, cell.hidden_size) for t in range(-cell.delay, 0)}
    for t in range(T):
        hs[t] = torch.tanh(
            x[:, t] @ cell.input.weight.T
            + cell.input.bias
            + hs[t - 1] @ cell.recurrent.weight.T
            + hs[t - cell.delay] @ cell.delayed.weight.T
        )
    return torch.stack([hs[t] for t in range(T)], dim=1)


def clockwork_cell(cell, x: Tensor) -> Tensor:
    H = cell.hidden_size
    periods = cell.period.tolist()

    def step(t, h):
        new = h.clone()
        for i in range(H):
            if t % periods[i] != 0:
                continue
            total = x[:, t] @ cell.input.weight[i] + cell.input.bias[i]
            for j in range(H):
                if periods[j] >= periods[i]:  # only slower (or equal) modules feed module i
                    total = total + cell.recurrent[i, j] * h[:, j]
            new[:, i] = torch.tanh(total)
        return new

    return _loop(x.shape[1], x.new_zeros(x.shape[0], H), step)


def torch_rnn(rnn, x: Tensor, kind: str) -> Tensor:
    """Single-layer nn.RNN / LSTM / GRU equations."""
    Wi, Wh, bi, bh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
    B, H = x.shape[0], rnn.hidden_size
    h, c, out = x.new_zeros(B, H), x.new_zeros(B, H), []
    for t in range(x.shape[1]):
        gi, gh = x[:, t] @ Wi.T + bi, h @ Wh.T + bh
        if kind == "lstm":
            i, f, g, o = (gi + gh).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        elif kind == "gru":
            ri, zi, ni = gi.chunk(3, dim=-1)
            rh, zh, nh = gh.chunk(3, dim=-1)
            r, z = torch.sigmoid(ri + rh), torch.sigmoid(zi + zh)
            h = (1 - z) * torch.tanh(ni + r * nh) + z * h
        else:
            h = (torch.relu if kind == "relu" else torch.tanh)(gi + gh)
        out.append(h)
    return torch.stack(out, dim=1)


def single_layer_reference(name: str, layer, x: Tensor) -> Tensor:
    """Output of a 1-layer, unidirectional ``layer`` built by ``name``, from its equation."""
    if name in ("irnn", "rnn_tanh", "lstm", "gru"):
        kind = {"irnn": "relu", "rnn_tanh": "tanh"}.get(name, name)
        return torch_rnn(layer.rnn, x, kind)
    cell = layer.layers[0][0]
    return {
        "indrnn": indrnn_cell,
        "minimalrnn": minimalrnn_cell,
        "cfn": cfn_cell,
        "leaky": leaky_cell,
        "delay": delay_cell,
        "clockwork": clockwork_cell,
    }[name](cell, x)
