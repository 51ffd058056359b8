"""A one-line description of the machine a figure was measured on."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path

import torch


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_string(accelerator: str | None = None) -> str:
    """E.g. ``"cpu: Intel Xeon ... (2 cores visible, 1 torch thread); torch 2.14.1"``.

    ``accelerator`` is the Lightning accelerator actually used ("cpu", "cuda", ...); when it is
    CUDA the GPU name and count come first.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu = f"{_cpu_model()} ({cores} cores visible, {torch.get_num_threads()} torch threads)"
    parts = []
    if accelerator in ("cuda", "gpu") and torch.cuda.is_available():
        parts.append(f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}")
    parts.append(f"cpu: {cpu}")
    parts.append(f"torch {torch.__version__}")
    return "; ".join(parts)


@functools.lru_cache(maxsize=1)
def source_commit() -> str:
    """The commit of the toolkit's own source tree (``git describe --always --dirty``, e.g. ``e3b1bcf`` or
    ``e3b1bcf-dirty``), or ``"unknown"`` when it is not a git checkout (an installed wheel) or git is missing."""
    root = Path(__file__).resolve().parents[2]  # the checkout holding toolkit/, when there is one
    if not (root / ".git").exists():
        return "unknown"
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"
