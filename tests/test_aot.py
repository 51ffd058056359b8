"""``recur bench --aot``: the real Triton kernels compile for sm_90 with Triton's own ptxas, no GPU needed.

A change that breaks compilation for a GPU target (a construct the interpreter accepts and the compiler
rejects, a register blow-up into spills) fails here, on any machine with Triton installed.
"""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("triton")

from toolkit.bench import aot  # noqa: E402
from toolkit.cli.main import main  # noqa: E402


@pytest.mark.skipif(aot.ptxas_path(90) is None, reason="the installed triton ships no ptxas for sm_90")
@pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"),
    reason="TRITON_INTERPRET is set: the package's kernels are interpreter functions, nothing to compile",
)
def test_representative_kernels_compile_for_sm90(tmp_path, capsys):
    """Forward and backward, float32 and bfloat16, with lengths (``--quick``): compiled, no spills, files written."""
    out = tmp_path / "aot"
    assert main(["bench", "--aot", "sm_90", "--quick", "--jobs", "1", "--out", str(out), "--no-progress"]) == 0
    data = json.loads((out / "bench_aot.json").read_text())
    rows = data["rows"]
    assert data["failed"] == 0 and len(rows) == len(aot.quick_configs())
    assert {(r["kernel"], r["dtype"]) for r in rows} >= {
        ("fwd", "float32"), ("fwd", "bfloat16"), ("bwd", "float32"), ("bwd", "bfloat16"),
    }  # fmt: skip
    for r in rows:
        assert r["arch"] == "sm_90" and r["has_len"]
        assert 0 < r["n_regs"] <= 255 and r["n_spills"] == 0, r
        assert r["shared"] >= 0 and r["programs_per_sm"] >= 1 and r["cubin_bytes"] > 0
    assert data["summary"]["sm_90"]["compiled"] == len(rows)
    printed = capsys.readouterr().out
    assert printed.count("n_regs=") == len(rows) and "n_spills=" in printed and "shared=" in printed
    md = (out / "bench_aot.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 2 + len(rows) and all(line.count("|") == table[0].count("|") for line in table)


def test_the_full_plan_covers_every_launchable_configuration():
    """Both kernels x 3 activations x reverse x lengths x 3 dtypes x each block launch_config picks
    (x 3 gradient patterns for the backward), plus the odd-width specialisation."""
    from toolkit.nn.kernels.triton_kernel import launch_config

    choices = aot.launch_choices(90)
    assert set(choices) == {(32, 1), (64, 2), (128, 4)}
    for (block, warps), (batch, hidden) in choices.items():
        assert launch_config(batch, hidden, 132) == (block, warps) or launch_config(batch, hidden, 114) == (
            block,
            warps,
        )
    configs = aot.kernel_configs(90)
    fwd = [c for c in configs if c.kernel == "fwd"]
    bwd = [c for c in configs if c.kernel == "bwd"]
    assert len(fwd) == 3 * 2 * 2 * 3 * len(choices) and len(bwd) == 3 * len(fwd)
    assert len(set(configs)) == len(configs)
    assert {(c.has_gy, c.has_glast) for c in bwd} == {(True, False), (False, True), (True, True)}
    assert all(c.hidden % 16 for c in aot.odd_hidden_configs(90))


def test_a_failed_configuration_is_reported_and_fails_the_command(tmp_path, monkeypatch, capsys):
    """No compiler needed: one configuration's compile raises; it is a row with its error, the rest compile,
    and the command exits 1."""
    calls = []

    def fake(cfg, arch):
        calls.append(cfg)
        if cfg.kernel == "bwd" and cfg.dtype == "bfloat16":
            raise RuntimeError("PTXASError: ptxas fatal : out of registers\nmore detail")
        return {"n_regs": 40, "stack_bytes": 0, "spill_stores": 0, "spill_loads": 0, "static_smem": 0,
                "n_spills": 0, "shared": 0, "programs_per_sm": 16, "cubin_bytes": 1}  # fmt: skip

    monkeypatch.setattr(aot, "_compile", fake)
    monkeypatch.setattr(aot, "ptxas_path", lambda arch: "/bin/true")
    out = tmp_path / "aot"
    assert main(["bench", "--aot", "sm_90", "--quick", "--jobs", "1", "--out", str(out), "--no-progress"]) == 1
    data = json.loads((out / "bench_aot.json").read_text())
    assert len(calls) == len(data["rows"]) == 4 and data["failed"] == 1
    bad = [r for r in data["rows"] if "error" in r]
    assert bad[0]["error"] == "RuntimeError: PTXASError: ptxas fatal : out of registers"
    printed = capsys.readouterr().out
    assert "FAILED" in printed and "1 configuration(s) failed" in printed
    assert "failed: RuntimeError" in (out / "bench_aot.md").read_text()


@pytest.mark.parametrize("text", ["sm_8x", "sm_70", "cuda", ""])
def test_bad_targets_are_one_line_errors(text, tmp_path, capsys):
    assert main(["bench", "--aot", text, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--aot" in err
    assert not (tmp_path / "x").exists()


def test_targets_parse():
    assert aot.parse_targets("sm_80, sm_90") == [80, 90]
    assert aot.parse_targets("90a,sm90,80") == [90, 80]


def test_ptxas_log_parse():
    log = (
        "ptxas info    : Compiling entry function '_recurrence_bwd' for 'sm_80'\n"
        "    8 bytes stack frame, 12 bytes spill stores, 16 bytes spill loads\n"
        "ptxas info    : Used 255 registers, used 1 barriers, 1024 bytes smem, 464 bytes cmem[0]\n"
    )
    assert aot.parse_ptxas_log(log) == {
        "n_regs": 255, "stack_bytes": 8, "spill_stores": 12, "spill_loads": 16, "static_smem": 1024,
    }  # fmt: skip
    assert aot.programs_per_sm(64, 4, 2048, 90) == 8  # 64 regs x 128 threads: 8 programs by registers
    assert aot.programs_per_sm(203, 2, 256, 90) == 4  # 6,656 registers per warp -> 9 warps -> 4 programs of 2 warps
