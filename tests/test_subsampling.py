"""Subsampling front-ends keep the layer contract (lengths, padding)."""

import pytest
import torch

from toolkit.nn.subsampling import build_subsampling


def test_frame_stack_concatenates_consecutive_frames():
    layer = build_subsampling("stack", 2, 3)
    x = torch.arange(2 * 7 * 2, dtype=torch.float).view(2, 7, 2)
    y, lengths = layer(x, torch.tensor([7, 4]))
    assert y.shape == (2, 3, 6) and lengths.tolist() == [3, 2]
    assert y[0, 0].tolist() == x[0, :3].flatten().tolist()
    assert y[1, 1].tolist() == [*x[1, 3].tolist(), 0.0, 0.0, 0.0, 0.0]  # frame 3, then padding as zeros


@pytest.mark.parametrize("kind,factor", [("stack", 3), ("conv", 2), ("conv", 4)])
def test_valid_outputs_do_not_depend_on_padding(kind, factor):
    torch.manual_seed(0)
    layer = build_subsampling(kind, 8, factor)
    x = torch.randn(2, 13, 8)
    lengths = torch.tensor([13, 6])
    y, out_len = layer(x, lengths)
    assert out_len.tolist() == [-(-13 // factor), -(-6 // factor)] and y.shape[-1] == layer.output_size
    alone, _ = layer(x[1:, :6], torch.tensor([6]))
    torch.testing.assert_close(y[1, : out_len[1]], alone[0])
    garbage = x.clone()
    garbage[1, 6:] = 1e3
    torch.testing.assert_close(layer(garbage, lengths)[0], y)
    assert torch.all(y[1, out_len[1] :] == 0)
