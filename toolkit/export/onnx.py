"""ONNX graphs of a ``CTCTask``: trace the plain-tensor form of :mod:`toolkit.export.graph` with the
TorchScript-based exporter (opset 17), then give the IndRNN recurrence its ONNX form.

The IndRNN recurrence h_t = act(a_t + u * h_{t-1}) is elementwise, so ONNX has no operator for it; four
forms were compared (``recur bench --case deploy``; docs/deploy.md has the figures):

* ``scan`` (kept): an ONNX ``Scan`` over time whose body is Mul, Add and the activation. It takes any
  number of frames, was as fast as the unrolled graph and the Loop per 150 ms chunk (0.36 ms, res_indrnn
  of 1.5M parameters, one thread), and is the smallest graph;
* ``loop``: an ONNX ``Loop`` doing the same with a ``Gather`` per step (0.38 ms);
* ``rnn``: ONNX's ``RNN`` operator with weights W, bias b and the diagonal recurrent matrix diag(u): the same
  function in one fused kernel, but with a dense H x H matrix: 3-4x slower (1.28 ms) and twice the size;
* ``unrolled``: the traced Python loop, one set of nodes per frame (0.36 ms), so one chunk length only.

The placeholder node ``recur::ElementwiseRecurrence`` that the trace records is replaced here by the
Scan or Loop (:func:`_rewrite_recurrences`).
"""

from __future__ import annotations

import io
import warnings

import torch

from .graph import (
    DEFAULT_INDRNN_FORM,
    RECURRENCE_DOMAIN,
    RECURRENCE_OP,
    StreamingCTC,
    UtteranceCTC,
)

OPSET = 17


def _export(module: torch.nn.Module, args: tuple, input_names, output_names, dynamic_axes, custom: bool) -> bytes:
    buffer = io.BytesIO()
    custom_opsets = {RECURRENCE_DOMAIN: 1} if custom else None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            module,
            args,
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
            custom_opsets=custom_opsets,
        )
    return buffer.getvalue()


def _rewrite_recurrences(model, form: str):
    """Replace every ``recur::ElementwiseRecurrence(a, u, h0) -> (h, h_T)`` node by a Scan or a Loop."""
    import onnx
    from onnx import TensorProto, helper

    graph = model.graph
    nodes = list(graph.node)
    del graph.node[:]
    for index, node in enumerate(nodes):
        if node.domain != RECURRENCE_DOMAIN or node.op_type != RECURRENCE_OP:
            graph.node.append(node)
            continue
        a, u, h0 = node.input
        y, last = node.output
        act = {"relu": "Relu", "tanh": "Tanh"}[helper.get_attribute_value(node.attribute[0]).decode()]
        p = f"recurrence{index}_"
        if form == "scan":
            body = helper.make_graph(
                [
                    helper.make_node("Mul", [u, p + "h"], [p + "uh"]),
                    helper.make_node("Add", [p + "a_t", p + "uh"], [p + "pre"]),
                    helper.make_node(act, [p + "pre"], [p + "h_next"]),
                    helper.make_node("Identity", [p + "h_next"], [p + "y_t"]),
                ],
                p + "scan_body",
                [helper.make_tensor_value_info(p + "h", TensorProto.FLOAT, None),
                 helper.make_tensor_value_info(p + "a_t", TensorProto.FLOAT, None)],
                [helper.make_tensor_value_info(p + "h_next", TensorProto.FLOAT, None),
                 helper.make_tensor_value_info(p + "y_t", TensorProto.FLOAT, None)],
            )  # fmt: skip
            graph.node.append(
                helper.make_node(
                    "Scan", [h0, a], [last, y], body=body, num_scan_inputs=1, scan_input_axes=[1],
                    scan_output_axes=[1], name=p + "scan",
                )  # fmt: skip
            )
        elif form == "loop":
            body = helper.make_graph(
                [
                    helper.make_node("Gather", [a, p + "i"], [p + "a_t"], axis=1),
                    helper.make_node("Mul", [u, p + "h"], [p + "uh"]),
                    helper.make_node("Add", [p + "a_t", p + "uh"], [p + "pre"]),
                    helper.make_node(act, [p + "pre"], [p + "h_next"]),
                    helper.make_node("Identity", [p + "h_next"], [p + "y_t"]),
                    helper.make_node("Identity", [p + "cond"], [p + "cond_out"]),
                ],
                p + "loop_body",
                [helper.make_tensor_value_info(p + "i", TensorProto.INT64, []),
                 helper.make_tensor_value_info(p + "cond", TensorProto.BOOL, []),
                 helper.make_tensor_value_info(p + "h", TensorProto.FLOAT, None)],
                [helper.make_tensor_value_info(p + "cond_out", TensorProto.BOOL, []),
                 helper.make_tensor_value_info(p + "h_next", TensorProto.FLOAT, None),
                 helper.make_tensor_value_info(p + "y_t", TensorProto.FLOAT, None)],
            )  # fmt: skip
            graph.node.extend(
                [
                    helper.make_node("Shape", [a], [p + "shape"], start=1, end=2),
                    helper.make_node("Squeeze", [p + "shape"], [p + "steps"]),
                    helper.make_node("Constant", [], [p + "true"], value=helper.make_tensor("", TensorProto.BOOL,
                                                                                            [], [True])),
                    helper.make_node("Loop", [p + "steps", p + "true", h0], [last, p + "ys"], body=body,
                                     name=p + "loop"),
                    helper.make_node("Transpose", [p + "ys"], [y], perm=[1, 0, 2]),
                ]
            )  # fmt: skip
        else:
            raise ValueError(f"no ONNX rewrite for IndRNN form {form!r}")
    kept = [op for op in model.opset_import if op.domain != RECURRENCE_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    onnx.checker.check_model(model)
    return model


def to_onnx(task, form: str, indrnn_form: str = DEFAULT_INDRNN_FORM, example_frames: int = 33) -> tuple[bytes, dict]:
    """The ONNX model of ``task`` (a ``CTCTask``) as bytes, and the description of its inputs, outputs and
    states (for config.json).

    ``form``: ``"stream"`` (:class:`~toolkit.export.graph.StreamingCTC`) or ``"utterance"``
    (:class:`~toolkit.export.graph.UtteranceCTC`). ``example_frames``: frames of the tracing input (the
    fixed chunk length of the ``unrolled`` IndRNN form; any length works for the others).
    """
    import onnx

    task = task.eval()
    feat_dim = int(task.cmvn.mean.numel())
    gen = torch.Generator().manual_seed(0)
    if form == "stream":
        module = StreamingCTC(task, indrnn_form).eval()
        enc = module.encoder
        k = module.factor
        feats = torch.randn(1, example_frames, feat_dim, generator=gen)
        # (unrolled: no context, so the traced step count is example_frames // k, for chunks of that length)
        fixed = k == 1 or indrnn_form == "unrolled"
        context = torch.zeros(1, 0, feat_dim) if fixed else torch.randn(1, k - 1, feat_dim, generator=gen)
        states = enc.zero_states(feats)
        inputs = ["feats", "context", *enc.state_names]
        outputs = ["log_probs", "context_out", *[n + "_out" for n in enc.state_names]]
        axes = {"feats": {0: "batch", 1: "frames"}, "context": {0: "batch", 1: "context_frames"},
                "log_probs": {0: "batch", 1: "out_frames"}, "context_out": {0: "batch", 1: "context_frames_out"}}
        for n in enc.state_names:
            axes[n] = axes[n + "_out"] = {1: "batch"}
        args = (feats, context, *states)
    elif form == "utterance":
        module = UtteranceCTC(task, indrnn_form).eval()
        enc = module.encoder
        feats = torch.randn(2, example_frames, feat_dim, generator=gen)
        lengths = torch.tensor([example_frames, max(1, example_frames - 7)])
        inputs, outputs = ["feats", "feat_lengths"], ["log_probs", "lengths"]
        axes = {"feats": {0: "batch", 1: "frames"}, "feat_lengths": {0: "batch"},
                "log_probs": {0: "batch", 1: "out_frames"}, "lengths": {0: "batch"}}  # fmt: skip
        args = (feats, lengths)
    else:
        raise ValueError(f"form must be 'stream' or 'utterance', got {form!r}")
    if indrnn_form == "unrolled":
        # one node set per frame: the chunk length is what the example had
        for name in ("feats",):
            axes[name] = {0: "batch"}
    custom = indrnn_form in ("scan", "loop") and enc.kind != "torch_rnn"  # a placeholder node to rewrite
    data = _export(module, args, inputs, outputs, axes, custom=custom)
    model = onnx.load_from_string(data)
    if any(n.domain == RECURRENCE_DOMAIN for n in model.graph.node):
        model = _rewrite_recurrences(model, indrnn_form)
    model.producer_name = "recur"
    data = model.SerializeToString()
    vocab = task.output.out_features
    H, L, D = enc.hidden_size, enc.num_layers, enc.directions
    io_spec = {
        "inputs": [{"name": "feats", "shape": ["batch", "frames", feat_dim], "dtype": "float32"}],
        "outputs": [],
        "states": [],
    }
    if form == "stream":
        io_spec["inputs"].append({"name": "context", "shape": ["batch", "context_frames", feat_dim],
                                  "dtype": "float32"})
        for n in enc.state_names:
            io_spec["inputs"].append({"name": n, "shape": [L * D, "batch", H], "dtype": "float32"})
            io_spec["states"].append({"input": n, "output": n + "_out", "shape": [L * D, "batch", H]})
        io_spec["outputs"] += [
            {"name": "log_probs", "shape": ["batch", "out_frames", vocab], "dtype": "float32"},
            {"name": "context_out", "shape": ["batch", "context_frames_out", feat_dim], "dtype": "float32"},
            *[{"name": n + "_out", "shape": [L * D, "batch", H], "dtype": "float32"} for n in enc.state_names],
        ]
    else:
        io_spec["inputs"].append({"name": "feat_lengths", "shape": ["batch"], "dtype": "int64"})
        io_spec["outputs"] += [
            {"name": "log_probs", "shape": ["batch", "out_frames", vocab], "dtype": "float32"},
            {"name": "lengths", "shape": ["batch"], "dtype": "int64"},
        ]
    if indrnn_form == "unrolled":
        io_spec["inputs"][0]["shape"][1] = example_frames
    return data, io_spec

