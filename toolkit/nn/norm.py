"""Normalisation for padded sequences: batch norm whose statistics never see padded steps, and layer
norm per step (no statistics across steps or sequences at all)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import length_mask

BATCH_NORM_MODES = ("seq", "frame", "renorm")  # MaskedBatchNorm's modes
NORM_MODES = (*BATCH_NORM_MODES, "layer")  # every value of the IndRNN layers' ``norm`` option


class MaskedBatchNorm(nn.Module):
    """Batch norm over ``x (B, T, H)`` that ignores padded steps.

    ``mode="seq"``: one mean/variance per feature over every valid step of the batch
    (Ioffe & Szegedy 2015, as used after the activation in IndRNN, Li et al. 2018).
    ``mode="frame"``: statistics over the batch separately for each time step, so a frame is
    normalised without looking at later frames; this keeps a stateful language model causal and
    makes chunked runs equal to one pass even in training. Running statistics (for evaluation)
    are shared across time in both modes.
    ``mode="renorm"``: batch renormalisation (Ioffe 2017, "Batch Renormalization: Towards Reducing
    Minibatch Dependence in Batch-Normalized Models") over all valid steps: in training
    ``x_hat = (x - mu_B) / sigma_B * r + d`` with ``r = sigma_B / sigma``, ``d = (mu_B - mu) / sigma``
    (running ``mu``, ``sigma``; no gradient through r, d) clipped to ``[1/r_max, r_max]`` and
    ``[-d_max, d_max]``, the clips opened linearly from (1, 0) to (3, 5) over updates 100..1100.
    Once open, training normalises with the statistics evaluation uses, so batches whose statistics
    differ from the corpus (length-sorted batches of very short utterances) cost no train/eval mismatch.
    """

    RENORM_LIMITS, RENORM_RAMP = (3.0, 5.0), (100, 1100)
    weight_decay_exempt = ("weight", "bias")  # the affine scale and shift, as for every norm

    def __init__(self, num_features: int, mode: str = "seq", momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        if mode not in BATCH_NORM_MODES:
            raise ValueError(f"unknown batch-norm mode {mode!r}; choose one of {', '.join(BATCH_NORM_MODES)}")
        self.mode, self.momentum, self.eps = mode, momentum, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        if mode == "renorm":
            self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, T, H), lengths: (B,) -> (B, T, H)."""
        # statistics in at least float32, also when x is bf16/fp16 under autocast
        xf = x.to(torch.promote_types(x.dtype, torch.float32))
        if self.training:
            mask = length_mask(lengths, x.shape[1]).unsqueeze(-1).to(xf.dtype)
            dims = (0,) if self.mode == "frame" else (0, 1)
            count = mask.sum(dims)  # (1,) for seq, (T, 1) for frame
            mean = (xf * mask).sum(dims) / count.clamp(min=1)
            var = ((xf - mean) ** 2 * mask).sum(dims) / count.clamp(min=1)
            x_hat = (xf - mean) * torch.rsqrt(var + self.eps)
            with torch.no_grad():
                if self.mode == "renorm":  # against the running statistics from before this batch
                    r, d = self._renorm(mean, var)
                    self.num_updates += 1
                total = count.sum()
                share = count / total  # frames weighted by how many sequences are valid there
                batch_mean = (mean * share).sum(0) if self.mode == "frame" else mean
                batch_var = (var * share).sum(0) if self.mode == "frame" else var
                unbiased = batch_var * total / (total - 1.0).clamp(min=1.0)  # tensors: no host sync
                self.running_mean.lerp_(batch_mean.to(self.running_mean.dtype), self.momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), self.momentum)
            if self.mode == "renorm":
                x_hat = x_hat * r + d
            y = x_hat * self.weight + self.bias
        else:
            # evaluation folds the statistics and the affine map into one scale and shift: one pass over
            # x instead of four, on the streaming server's path
            scale = torch.rsqrt(self.running_var + self.eps) * self.weight
            shift = self.bias - self.running_mean * scale
            y = torch.addcmul(shift.to(xf.dtype), xf, scale.to(xf.dtype))
        return y.to(x.dtype) if not torch.is_autocast_enabled(x.device.type) else y

    def _renorm(self, mean: Tensor, var: Tensor) -> tuple[Tensor, Tensor]:
        """r, d of batch renormalisation against the running statistics, with the clips of the
        current update count (tensor arithmetic throughout: no host sync on the training path)."""
        start, end = self.RENORM_RAMP
        ramp = ((self.num_updates - start) / (end - start)).clamp(0.0, 1.0)
        r_max = 1.0 + (self.RENORM_LIMITS[0] - 1.0) * ramp
        d_max = self.RENORM_LIMITS[1] * ramp
        sigma = torch.sqrt(self.running_var + self.eps)
        r = torch.clamp(torch.sqrt(var + self.eps) / sigma, 1.0 / r_max, r_max)
        d = torch.clamp((mean - self.running_mean) / sigma, -d_max, d_max)
        return r, d

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, mode={self.mode!r}"


class StepLayerNorm(nn.LayerNorm):
    """Layer normalisation (Ba, Kiros & Hinton 2016, "Layer Normalization") of ``x (B, T, H)`` at
    each step over its H features: ``y_bt = g ⊙ (x_bt - mu_bt) / sqrt(var_bt + eps) + b`` with
    ``mu_bt``, ``var_bt`` the mean and (biased) variance of the H values of step t of sequence b, and a
    learned gain g and bias b (``torch.nn.LayerNorm(H)``).

    Nothing is shared across steps or sequences: there are no running statistics, training and
    evaluation compute the same function, a sequence's outputs do not depend on the rest of its batch
    (no train/eval mismatch for length-sorted batches of short utterances), and chunked runs equal one
    pass. ``lengths`` is accepted for the interface ``MaskedBatchNorm`` has and is not needed: a padded
    step is normalised on its own and touches no valid one (callers zero padded outputs as before).
    A subclass of ``nn.LayerNorm``, so the optimiser's no-decay rule exempts g and b as for every
    torch norm layer; ``weight_decay_exempt`` says so as ``MaskedBatchNorm``'s does.
    """

    weight_decay_exempt = ("weight", "bias")
    mode = "layer"

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__(num_features, eps=eps)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x: (B, T, H), lengths: (B,) (unused) -> (B, T, H)."""
        return super().forward(x)


def build_norm(num_features: int, mode: str) -> MaskedBatchNorm | StepLayerNorm:
    """The normalisation layer of an IndRNN ``norm`` value: ``layer`` -> :class:`StepLayerNorm`,
    ``seq`` / ``frame`` / ``renorm`` -> :class:`MaskedBatchNorm` in that mode."""
    if mode == "layer":
        return StepLayerNorm(num_features)
    if mode not in BATCH_NORM_MODES:
        raise ValueError(f"unknown norm {mode!r}; choose one of {', '.join(NORM_MODES)}")
    return MaskedBatchNorm(num_features, mode)
