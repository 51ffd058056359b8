"""A trained ``CTCTask`` rebuilt as plain, traceable tensor code: what ``torch.onnx.export`` records.

The training-time modules do things a tracer cannot keep (the IndRNN recurrence is a custom autograd
function or a Triton kernel; masking asks ``int(lengths.min())``; the fused RNNs pack padded batches).
Here every step is a tensor operation, so the recorded graph is the same for every input length:

* global CMVN, then frame stacking (or the strided convolutions) exactly as the task computes them;
* each encoder layer, one direction at a time: the IndRNN recurrence h_t = act(W x_t + b + u * h_{t-1})
  in one of :data:`INDRNN_FORMS`, the gated and ReLU/tanh RNNs as unidirectional one-layer
  ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` clones (exported as ONNX's own LSTM / GRU / RNN operators);
  the backward direction sees each sequence reversed within its own length (a gather);
* batch normalisation in evaluation mode as a per-feature affine map (folded into the input weights
  where it sits between the projection and the recurrence); layer normalisation (``norm: layer``) as
  ONNX's ``LayerNormalization`` (opset 17) over the features of each step, in the same places;
* the output layer and the log-softmax.

Two wrappers use them: :class:`StreamingCTC` (unidirectional models: one chunk of frames in, the encoder
state and the frames not yet stacked carried in and out) and :class:`UtteranceCTC` (whole padded
utterances with their lengths).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from toolkit.errors import UserError
from toolkit.nn.indrnn import IndRNN, IndRNNCell
from toolkit.nn.norm import MaskedBatchNorm, StepLayerNorm
from toolkit.nn.res_indrnn import ResIndRNN
from toolkit.nn.subsampling import ConvSubsampling, FrameStack
from toolkit.nn.torch_rnn import TorchRNN

# layer families that export, and the recurrence behind each
EXPORTABLE = {
    "indrnn": "IndRNN layers (elementwise recurrence)",
    "res_indrnn": "residual IndRNN blocks (elementwise recurrence)",
    "irnn": "ONNX RNN, ReLU",
    "rnn_tanh": "ONNX RNN, tanh",
    "lstm": "ONNX LSTM",
    "gru": "ONNX GRU (linear_before_reset)",
}
# how the IndRNN recurrence is written in the graph (toolkit.export.onnx says which is kept, and why):
#   scan: an ONNX Scan over time whose body is h = act(a_t + u * h)
#   loop: an ONNX Loop doing the same with a Gather per step
#   rnn: ONNX's RNN operator with the diagonal recurrent matrix diag(u)
#   unrolled: one set of nodes per time step (a fixed chunk length; for the comparison only)
INDRNN_FORMS = ("scan", "loop", "rnn", "unrolled")
DEFAULT_INDRNN_FORM = "scan"
RECURRENCE_OP = "ElementwiseRecurrence"
RECURRENCE_DOMAIN = "recur"


def not_exportable(name: str) -> UserError:
    return UserError(
        f"a {name} encoder cannot be exported; exportable layer families: {', '.join(EXPORTABLE)}"
    )


def _act(name: str):
    return {"relu": torch.relu, "tanh": torch.tanh}[name]


class _Recurrence(torch.autograd.Function):
    """h_t = act(a_t + u * h_{t-1}) over a (B, T, H) from h0 (B, H) -> (h (B, T, H), h_T (B, H)).

    Runs as a plain loop in PyTorch; in an ONNX export it is one placeholder node
    ``recur::ElementwiseRecurrence`` that ``toolkit.export.onnx`` replaces by a Scan or a Loop.
    """

    @staticmethod
    def forward(ctx, a: Tensor, u: Tensor, h0: Tensor, activation: str):
        act = _act(activation)
        h, out = h0, []
        for a_t in a.unbind(1):
            h = act(a_t + u * h)
            out.append(h)
        return torch.stack(out, 1) if out else a.new_zeros(a.shape), h

    @staticmethod
    def symbolic(g, a, u, h0, activation: str):
        y, last = g.op(f"{RECURRENCE_DOMAIN}::{RECURRENCE_OP}", a, u, h0, activation_s=activation, outputs=2)
        y.setType(a.type())
        last.setType(h0.type())
        return y, last


def _unrolled(a: Tensor, u: Tensor, h0: Tensor, activation: str) -> tuple[Tensor, Tensor]:
    act = _act(activation)
    h, out = h0, []
    for a_t in a.unbind(1):  # traced: one copy of the step per frame of the example input
        h = act(a_t + u * h)
        out.append(h)
    return torch.stack(out, 1), h


def _bn_affine(norm: MaskedBatchNorm) -> tuple[Tensor, Tensor]:
    """Evaluation-mode batch norm as y = x * scale + shift."""
    scale = norm.weight.detach() * torch.rsqrt(norm.running_var + norm.eps)
    return scale, norm.bias.detach() - norm.running_mean * scale


class FrozenNorm(nn.Module):
    """A norm of the IndRNN layers in evaluation form, ``x (..., H) -> (..., H)``: batch norm as the
    per-feature affine map of :func:`_bn_affine`, layer norm (``StepLayerNorm``) as ``F.layer_norm``
    over the last axis, which the exporter writes as one ``LayerNormalization`` node."""

    def __init__(self, norm: MaskedBatchNorm | StepLayerNorm):
        super().__init__()
        self.layer = isinstance(norm, StepLayerNorm)
        if self.layer:
            self.width, self.eps = int(norm.weight.shape[0]), float(norm.eps)
            self.register_buffer("weight", norm.weight.detach().clone())
            self.register_buffer("bias", norm.bias.detach().clone())
        else:
            scale, shift = _bn_affine(norm)
            self.register_buffer("scale", scale)
            self.register_buffer("shift", shift)

    def forward(self, x: Tensor) -> Tensor:
        if self.layer:
            return F.layer_norm(x, (self.width,), self.weight, self.bias, self.eps)
        return x * self.scale + self.shift


def reverse_within(x: Tensor, lengths: Tensor) -> Tensor:
    """Each sequence of ``x (B, T, H)`` reversed within its own length (padding stays in place)."""
    t = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    idx = lengths.unsqueeze(1) - 1 - t
    idx = torch.where(idx >= 0, idx, t)
    return x.gather(1, idx.unsqueeze(-1).expand(x.shape))


class IndRNNLayer(nn.Module):
    """One IndRNN layer (one or two directions) with an optional norm before it (res_indrnn's
    pre-activation unit): ``x (B, T, F), lengths | None, h0 (D, B, H) -> (y (B, T, D H), h_T (D, B, H))``.

    A cell's ``frame`` batch norm is folded into W and b; its ``layer`` norm stays a LayerNormalization
    of W x_t, between the projection and the recurrence (in the ``rnn`` form the operator's input
    weights are then the identity, its input the normalised W x_t)."""

    def __init__(
        self, cells: list[IndRNNCell], form: str, pre_norm: MaskedBatchNorm | StepLayerNorm | None = None
    ):
        super().__init__()
        if form not in INDRNN_FORMS:
            raise ValueError(f"IndRNN form must be one of {', '.join(INDRNN_FORMS)}, got {form!r}")
        self.form = form
        self.activation = cells[0].activation
        if self.activation not in ("relu", "tanh"):
            raise UserError(f"an IndRNN with activation {self.activation!r} cannot be exported (relu or tanh only)")
        self.hidden_size = cells[0].hidden_size
        self.pre = FrozenNorm(pre_norm) if pre_norm is not None else None
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.us = nn.ParameterList()
        self.before = nn.ModuleList()  # per direction: the layer norm of W x_t, or an Identity
        self.post = nn.ModuleList()  # per direction: the batch norm after the recurrence, or an Identity
        self.rnns = nn.ModuleList()
        for cell in cells:
            with torch.no_grad():
                w = cell.input.weight.detach().clone()
                b = cell.input.bias.detach().clone() if cell.input.bias is not None else torch.zeros(w.shape[0])
                if cell.norm_mode == "frame":  # normalises W x before the activation: fold it into W, b
                    scale, shift = _bn_affine(cell.norm)
                    w, b = w * scale[:, None], b * scale + shift
                u = cell.u.detach().clamp(-cell.u_max, cell.u_max).clone()
            self.weights.append(nn.Parameter(w, requires_grad=False))
            self.biases.append(nn.Parameter(b, requires_grad=False))
            self.us.append(nn.Parameter(u, requires_grad=False))
            layer_norm = cell.norm_mode == "layer"
            self.before.append(FrozenNorm(cell.norm) if layer_norm else nn.Identity())
            post = cell.norm is not None and cell.norm_mode not in ("frame", "layer")
            self.post.append(FrozenNorm(cell.norm) if post else nn.Identity())
            if form == "rnn":
                # h_t = act(W x_t + b + diag(u) h_{t-1}): ONNX's RNN operator with a diagonal recurrence
                # with a layer norm the operator gets LN(W x_t) itself, through identity input weights
                width = w.shape[0] if layer_norm else w.shape[1]
                rnn = nn.RNN(width, w.shape[0], nonlinearity=self.activation, batch_first=True)
                with torch.no_grad():
                    rnn.weight_ih_l0.copy_(torch.eye(w.shape[0]) if layer_norm else w)
                    rnn.bias_ih_l0.copy_(torch.zeros_like(b) if layer_norm else b)
                    rnn.weight_hh_l0.copy_(torch.diag(u))
                    rnn.bias_hh_l0.zero_()
                rnn.requires_grad_(False)
                self.rnns.append(rnn)

    @property
    def directions(self) -> int:
        return len(self.weights)

    def forward(self, x: Tensor, lengths: Tensor | None, h0: Tensor) -> tuple[Tensor, Tensor]:
        if self.pre is not None:
            x = self.pre(x)
        ys, hs = [], []
        for d in range(self.directions):
            xd = x if d == 0 else reverse_within(x, lengths)
            layer_norm = not isinstance(self.before[d], nn.Identity)
            if self.form == "rnn":
                inp = self.before[d](F.linear(xd, self.weights[d], self.biases[d])) if layer_norm else xd
                y, h = self.rnns[d](inp, h0[d : d + 1])
            else:
                a = self.before[d](F.linear(xd, self.weights[d], self.biases[d]))
                if self.form == "unrolled":
                    y, h = _unrolled(a, self.us[d], h0[d], self.activation)
                else:
                    y, h = _Recurrence.apply(a, self.us[d], h0[d], self.activation)
                h = h.unsqueeze(0)
            y = self.post[d](y)
            ys.append(y if d == 0 else reverse_within(y, lengths))
            hs.append(h)
        return (torch.cat(ys, -1) if len(ys) > 1 else ys[0]), (torch.cat(hs, 0) if len(hs) > 1 else hs[0])


class TorchRNNLayer(nn.Module):
    """Layer ``index`` of a fused ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` as one unidirectional one-layer
    clone per direction: ``x, lengths | None, h0 (D, B, H)[, c0] -> (y (B, T, D H), h_T[, c_T])``."""

    def __init__(self, rnn: nn.RNNBase, index: int):
        super().__init__()
        self.is_lstm = isinstance(rnn, nn.LSTM)
        directions = 2 if rnn.bidirectional else 1
        width = rnn.input_size if index == 0 else rnn.hidden_size * directions
        self.clones = nn.ModuleList()
        for d in range(directions):
            suffix = f"_l{index}" + ("_reverse" if d else "")
            if isinstance(rnn, nn.LSTM):
                clone = nn.LSTM(width, rnn.hidden_size, batch_first=True)
            elif isinstance(rnn, nn.GRU):
                clone = nn.GRU(width, rnn.hidden_size, batch_first=True)
            else:
                clone = nn.RNN(width, rnn.hidden_size, nonlinearity=rnn.nonlinearity, batch_first=True)
            with torch.no_grad():
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(clone, f"{name}_l0").copy_(getattr(rnn, name + suffix))
            clone.requires_grad_(False)
            self.clones.append(clone)

    def forward(self, x: Tensor, lengths: Tensor | None, h0: Tensor, c0: Tensor | None = None):
        ys, hs, cs = [], [], []
        for d, clone in enumerate(self.clones):
            xd = x if d == 0 else reverse_within(x, lengths)
            if self.is_lstm:
                y, (h, c) = clone(xd, (h0[d : d + 1].contiguous(), c0[d : d + 1].contiguous()))
                cs.append(c)
            else:
                y, h = clone(xd, h0[d : d + 1].contiguous())
            ys.append(y if d == 0 else reverse_within(y, lengths))
            hs.append(h)
        y = torch.cat(ys, -1) if len(ys) > 1 else ys[0]
        h = torch.cat(hs, 0) if len(hs) > 1 else hs[0]
        if self.is_lstm:
            return y, h, (torch.cat(cs, 0) if len(cs) > 1 else cs[0])
        return y, h


class Encoder(nn.Module):
    """The task's encoder in traceable form. ``forward(x (B, T, F), lengths | None, states)`` with
    ``states`` a list of ``len(state_names)`` tensors (num_layers * directions, B, H): ``state_h`` (and
    ``state_c`` for an LSTM), layer-major as in PyTorch's RNNs -> ``(y (B, T, D H), new states)``."""

    def __init__(self, encoder: nn.Module, indrnn_form: str = DEFAULT_INDRNN_FORM):
        super().__init__()
        name = getattr(encoder, "layer_name", type(encoder).__name__)
        if name not in EXPORTABLE:
            raise not_exportable(name)
        self.name = name
        self.hidden_size = encoder.hidden_size
        self.directions = 2 if encoder.bidirectional else 1
        self.kind = "torch_rnn" if isinstance(encoder, TorchRNN) else name
        self.residual: list[list[int]] = []  # res_indrnn: the layer indices of each block
        self.final = None
        layers: list[nn.Module] = []
        if isinstance(encoder, TorchRNN):
            layers = [TorchRNNLayer(encoder.rnn, i) for i in range(encoder.num_layers)]
        elif isinstance(encoder, ResIndRNN):
            layers.append(IndRNNLayer(list(encoder.first.layers[0]), indrnn_form))
            for units in encoder.blocks:
                block = []
                for unit in units:
                    block.append(len(layers))
                    layers.append(IndRNNLayer(list(unit.rnn.layers[0]), indrnn_form, pre_norm=unit.norm))
                self.residual.append(block)
            self.final = FrozenNorm(encoder.final_norm)
        elif isinstance(encoder, IndRNN):
            layers = [IndRNNLayer(list(cells), indrnn_form) for cells in encoder.layers]
        else:
            raise not_exportable(name)
        self.layers = nn.ModuleList(layers)
        self.num_layers = len(layers)
        self.state_names = ["state_h", "state_c"] if self.kind == "torch_rnn" and layers[0].is_lstm else ["state_h"]

    @property
    def output_size(self) -> int:
        return self.hidden_size * self.directions

    def zero_states(self, x: Tensor) -> list[Tensor]:
        shape = (self.num_layers * self.directions, x.shape[0], self.hidden_size)
        return [x.new_zeros(shape) for _ in self.state_names]

    def forward(self, x: Tensor, lengths: Tensor | None, states: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        D = self.directions
        new: list[list[Tensor]] = [[] for _ in self.state_names]

        def run(i: int, inp: Tensor) -> Tensor:
            parts = [s[i * D : (i + 1) * D] for s in states]
            out = self.layers[i](inp, lengths, *parts)
            for k, s in enumerate(out[1:]):
                new[k].append(s)
            return out[0]

        if self.final is not None:  # res_indrnn (its blocks may be none: num_layers 1)
            x = run(0, x)
            for block in self.residual:
                branch = x
                for i in block:
                    branch = run(i, branch)
                x = x + branch
            x = self.final(x)
        else:
            for i in range(self.num_layers):
                x = run(i, x)
        return x, [torch.cat(parts, 0) for parts in new]


def _time_mask(lengths: Tensor, steps_like: Tensor) -> Tensor:
    """(B, T, 1) float mask of the valid steps of ``steps_like (B, T, ...)``."""
    t = torch.arange(steps_like.shape[1], device=lengths.device).unsqueeze(0)
    return (t < lengths.unsqueeze(1)).unsqueeze(-1).to(steps_like.dtype)


class _Head(nn.Module):
    """What every wrapper shares: the CMVN statistics, the encoder, the output layer."""

    def __init__(self, task, indrnn_form: str):
        super().__init__()
        self.register_buffer("mean", task.cmvn.mean.detach().clone())
        self.register_buffer("std", task.cmvn.std.detach().clone())
        self.encoder = Encoder(task.encoder, indrnn_form)
        self.output = task.output
        self.feat_dim = int(task.cmvn.mean.numel())

    def logits(self, y: Tensor) -> Tensor:
        return self.output(y).log_softmax(dim=-1)


class StreamingCTC(_Head):
    """Chunk by chunk (unidirectional encoders with frame stacking).

    ``forward(feats (B, T, F) raw fbank, context (B, C, F), state_h (L, B, H)[, state_c])`` ->
    ``(log_probs (B, (C + T) // k, V), context_out (B, (C + T) % k, F), state_h_out[, state_c_out])``.
    ``context`` holds the raw frames of earlier chunks that did not fill a stack of k (0 <= C < k); the
    encoder state is carried across chunks. At the end of the stream the caller pads the context to k
    frames with rows equal to the CMVN mean (they normalise to the zeros the offline model pads with)
    and runs it once more. Concatenated, the chunks' log-probabilities equal the whole utterance's.
    """

    def __init__(self, task, indrnn_form: str = DEFAULT_INDRNN_FORM):
        super().__init__(task, indrnn_form)
        if task.encoder.bidirectional:
            raise UserError("a bidirectional model cannot stream: export it whole-utterance (--form utterance)")
        if not isinstance(task.frontend, FrameStack):
            raise UserError(
                "streaming export supports frame stacking (subsampling stack or none); export a conv-subsampled "
                "model whole-utterance (--form utterance)"
            )
        self.factor = task.frontend.factor

    def forward(self, feats: Tensor, context: Tensor, *states: Tensor):
        k = self.factor
        x = torch.cat([context, feats], 1)
        ready = x.shape[1] // k * k
        stack = (x[:, :ready] - self.mean) / self.std
        stack = stack.reshape(x.shape[0], -1, k * self.feat_dim)
        y, new = self.encoder(stack, None, list(states))
        return (self.logits(y), x[:, ready:], *new)


class UtteranceCTC(_Head):
    """Whole padded utterances: ``forward(feats (B, T, F) raw fbank, feat_lengths (B,) int64)`` ->
    ``(log_probs (B, T', V), lengths (B,))``, T' = ceil(T / factor); the log-probabilities at padded
    steps are those the PyTorch model gives there (the output layer's of a zero encoder output)."""

    def __init__(self, task, indrnn_form: str = DEFAULT_INDRNN_FORM):
        super().__init__(task, indrnn_form)
        self.frontend = task.frontend

    def subsample(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        fe = self.frontend
        if isinstance(fe, FrameStack):
            k = fe.factor
            x = x * _time_mask(lengths, x)
            if k > 1:
                steps = (x.shape[1] + k - 1) // k * k
                x = torch.cat([x, x.new_zeros(x.shape[0], k - 1, x.shape[2])], 1)[:, :steps]
            out = x.reshape(x.shape[0], -1, k * x.shape[2])
            return out, torch.div(lengths + k - 1, k, rounding_mode="floor")
        if isinstance(fe, ConvSubsampling):
            h = x.unsqueeze(1)
            for conv in fe.convs:
                t = torch.arange(h.shape[2], device=h.device).unsqueeze(0)
                h = h * (t < lengths.unsqueeze(1)).to(h.dtype)[:, None, :, None]
                h = torch.relu(conv(h))
                lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
            out = h.permute(0, 2, 1, 3).reshape(h.shape[0], h.shape[2], -1)
            return out * _time_mask(lengths, out), lengths
        raise UserError(f"a {type(fe).__name__} front end cannot be exported")

    def forward(self, feats: Tensor, feat_lengths: Tensor):
        x = (feats - self.mean) / self.std
        x, lengths = self.subsample(x, feat_lengths)
        y, _ = self.encoder(x, lengths, self.encoder.zero_states(x))
        y = y * _time_mask(lengths, y)
        return self.logits(y), lengths
