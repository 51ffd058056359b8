"""Runs a recipe's stages in order; each stage is skipped when its stamp says it is done.

A stage's stamp (``<exp>/.stamps/<stage>[-<model>].json``) holds a fingerprint of its command,
of every config file its command names (.yaml, .cfg, ...; not the file after ``--out``, its own output),
of its declared ``inputs``, and of the stages it depends on (every earlier shared stage, and the
earlier stages of its own model; a shared stage after per-model ones depends on all of them): a rerun
skips what is done and redoes what changed, and everything downstream of it. A stage that trains
(``workdir``) and was interrupted (even by ``kill -9``) resumes from
``<workdir>/checkpoints/last.ckpt``; if its config changed meanwhile the old run is moved aside,
never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import UserError

from .spec import Recipe, Stage

# files named on a stage's command line with these suffixes are configs: their content is part of the
# stamp (other paths on the command line are often the stage's own outputs)
CONFIG_SUFFIXES = {".yaml", ".yml", ".cfg", ".conf", ".toml", ".ini", ".json"}
OUTPUT_FLAGS = {"--out", "--output", "-o"}
_CAUSE = re.compile(r"(error|exception|failed|killed|not found|no such)", re.IGNORECASE)


class StageFailed(UserError):
    """A stage exited non-zero. The message names the stage, the cause and the full log."""

    def __init__(self, label: str, code: int, cause: str, log: Path):
        self.label, self.code, self.cause, self.log = label, code, cause, log
        super().__init__(f"stage {label} failed (exit {code}): {cause} -- full log: {log}")


@dataclass
class Job:
    stage: Stage
    model: str | None
    argv: list[str]
    workdir: Path | None
    inputs: list[Path]

    @property
    def label(self) -> str:
        return f"{self.stage.name}[{self.model}]" if self.model else self.stage.name

    @property
    def slug(self) -> str:
        return f"{self.stage.name}-{self.model}" if self.model else self.stage.name


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(path: Path) -> object:
    """Content hash of a small file; (size, mtime) listing of a folder or a large file."""
    if path.is_file():
        stat = path.stat()
        return _sha256_file(path) if stat.st_size < (64 << 20) else [stat.st_size, stat.st_mtime_ns]
    if path.is_dir():
        listing = []
        for root, _, files in sorted(os.walk(path)):
            for name in sorted(files):
                st = (Path(root) / name).stat()
                listing.append([os.path.relpath(Path(root) / name, path), st.st_size, st.st_mtime_ns])
        return hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    return None


def apply_overrides(recipe: Recipe, overrides: dict[str, str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The recipe's variables after ``--set``: (shared values, per-model values).

    ``KEY=VALUE`` sets a variable for every model; ``KEY.MODEL=VALUE`` sets one model's value of a
    variable used only by per_model stages (a shared one becomes per-model, its value the default).
    """
    shared = dict(recipe.vars)
    per_model = {k: dict(v) for k, v in recipe.model_vars.items()}
    known = set(shared) | set(per_model)
    for item, value in overrides.items():
        key, _, model = item.partition(".")
        if key not in known:
            raise UserError(
                f"--set {item}: not a variable of {recipe.path} (vars: {', '.join(sorted(known)) or 'none'})"
            )
        if not model:
            shared[key] = value
            per_model.pop(key, None)
            continue
        if model not in recipe.models:
            raise UserError(f"--set {item}: {model!r} is not a model of {recipe.path} ({', '.join(recipe.models)})")
        users = [s.name for s in recipe.stages if not s.per_model and "{" + key + "}" in s.run + (s.workdir or "")]
        if users:
            raise UserError(
                f"--set {item}: {key} is used by shared stage(s) {users}; set it for all models (--set {key}=...)"
            )
        if key in shared:
            per_model[key] = {"default": shared.pop(key)}
        per_model[key][model] = value
    return shared, per_model


class RecipeRunner:
    """Expands a recipe into jobs and runs them (see the module docstring)."""

    def __init__(
        self,
        recipe: Recipe,
        exp: str | None = None,
        devices: int = 1,
        num_nodes: int = 1,
        models: list[str] | None = None,
        force: bool = False,
        echo: Callable[[str], None] = print,
        overrides: dict[str, str] | None = None,
    ):
        if models:
            unknown = [m for m in models if m not in recipe.models]
            if unknown:
                raise UserError(
                    f"--models: {', '.join(unknown)} not in {recipe.path} (models: {', '.join(recipe.models)})"
                )
        if devices < 1 or num_nodes < 1:
            raise UserError("--devices and --num-nodes must be at least 1")
        self.recipe, self.force, self.echo = recipe, force, echo
        self.exp = Path(exp or recipe.exp)
        self.models = models or recipe.models
        shared, per_model = apply_overrides(recipe, overrides or {})
        self.model_vars = per_model
        self.vars = {
            **shared,
            "exp": str(self.exp),
            "recipe_dir": str(recipe.path.parent),
            "devices": str(devices),
            "num_nodes": str(num_nodes),
        }

    # --- planning ------------------------------------------------------------------------------
    def jobs(self, start: str | None = None, stop: str | None = None) -> list[Job]:
        stages = self.recipe.stages
        first = self.recipe.index(start) if start else 0
        last = self.recipe.index(stop) if stop else len(stages) - 1
        if first > last:
            raise UserError(f"--stage {start} comes after --stop-stage {stop}")
        out = []
        for stage in stages[first : last + 1]:
            for model in self.models if stage.per_model else [None]:
                values = dict(self.vars)
                if model:
                    values["model"] = model
                    values.update({k: v.get(model, v.get("default", "")) for k, v in self.model_vars.items()})
                argv = shlex.split(stage.run.format(**values))
                workdir = Path(stage.workdir.format(**values)) if stage.workdir else None
                inputs = [Path(p.format(**values)) for p in stage.inputs]
                out.append(Job(stage, model, argv, workdir, inputs))
        return out

    def key(self, job: Job) -> str:
        """Fingerprint of everything that decides a stage's result."""
        outputs = {b for a, b in zip(job.argv, job.argv[1:], strict=False) if a in OUTPUT_FLAGS}
        files = {
            a: fingerprint(Path(a))
            for a in job.argv
            if a not in outputs and Path(a).suffix in CONFIG_SUFFIXES and Path(a).is_file()
        }
        inputs = {str(p): fingerprint(p) for p in job.inputs}
        blob = json.dumps({"argv": job.argv, "files": files, "inputs": inputs}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _stamp(self, job: Job, suffix: str = "") -> Path:
        return self.exp / ".stamps" / f"{job.slug}{suffix}.json"

    @staticmethod
    def depends(job: Job, earlier: Job) -> bool:
        """Whether ``job`` consumes what ``earlier`` (a stage before it) produces."""
        return earlier.model is None or job.model is None or earlier.model == job.model

    def plan(self, start: str | None = None, stop: str | None = None) -> list[tuple[Job, str, str]]:
        """The selected jobs with their own key and the fingerprint of what they depend on (over the
        whole recipe, whatever the selection)."""
        everything = self.jobs()
        keys = {j.label: self.key(j) for j in everything}
        selected = {j.label for j in self.jobs(start, stop)}
        out = []
        for i, job in enumerate(everything):
            if job.label in selected:
                needs = [[e.label, keys[e.label]] for e in everything[:i] if self.depends(job, e)]
                out.append((job, keys[job.label], hashlib.sha256(json.dumps(needs).encode()).hexdigest()))
        return out

    def states(self, start: str | None = None, stop: str | None = None) -> list[tuple[Job, bool]]:
        """(job, done) for the selected jobs, as ``run`` would judge them."""
        return [(job, self.is_done(job, key, upstream)) for job, key, upstream in self.plan(start, stop)]

    def is_done(self, job: Job, key: str, upstream: str | None = None) -> bool:
        stamp = self._stamp(job)
        if not stamp.is_file():
            return False
        try:
            data = json.loads(stamp.read_text())
        except ValueError:
            return False
        # a stamp without "upstream" (written before dependencies were recorded) cannot say whether
        # the stages it consumes changed since (a retrained model would keep its old decode): redo it
        return data.get("key") == key and data.get("upstream") == upstream

    # --- running -------------------------------------------------------------------------------
    def run(self, start: str | None = None, stop: str | None = None) -> list[tuple[str, str]]:
        """Run the selected stages; returns (label, "done" | "skipped") per job."""
        from toolkit.data.io import write_json

        results = []
        for job, key, upstream in self.plan(start, stop):
            if not self.force and self.is_done(job, key, upstream):
                self.echo(f"== {job.label}: up to date, skipped")
                results.append((job.label, "skipped"))
                continue
            argv = list(job.argv)
            if job.workdir is not None:
                argv += self._resume_args(job, key)
                write_json(self._stamp(job, ".started"), {"key": key, "started": time.time()})
            self.echo(f"== {job.label}: {shlex.join(argv)}")
            t0 = time.time()
            self._execute(job, argv)
            write_json(
                self._stamp(job),
                {"key": key, "upstream": upstream, "argv": argv, "finished": time.time(), "seconds": time.time() - t0},
            )
            self._stamp(job, ".started").unlink(missing_ok=True)
            results.append((job.label, "done"))
        return results

    def _resume_args(self, job: Job, key: str) -> list[str]:
        last = job.workdir / "checkpoints" / "last.ckpt"
        if not job.workdir.exists():
            return []
        started = self._stamp(job, ".started")
        same = started.is_file() and json.loads(started.read_text()).get("key") == key
        if same and not self.force and last.is_file():
            self.echo(f"== {job.label}: resuming from {last}")
            return ["--ckpt_path", "last"]
        stale = job.workdir.with_name(f"{job.workdir.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
        job.workdir.rename(stale)
        self.echo(f"== {job.label}: inputs or config changed (or --force); previous run moved to {stale}")
        return []

    def _execute(self, job: Job, argv: list[str]) -> None:
        log = self.exp / "logs" / f"{job.slug}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "toolkit.cli.main", *argv[1:]] if argv and argv[0] == "recur" else argv
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        tail: deque[str] = deque(maxlen=200)
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(argv)}\n")
            try:
                proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            except FileNotFoundError:
                raise StageFailed(job.label, 127, f"command not found: {argv[0]}", log) from None
            buffer = b""
            for chunk in iter(lambda: proc.stdout.read1(65536), b""):
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                text = chunk.decode("utf-8", errors="replace")
                out.write(text)
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                tail.extend(line.decode("utf-8", errors="replace") for line in lines)
            if buffer:
                tail.append(buffer.decode("utf-8", errors="replace"))
            code = proc.wait()
        if code != 0:
            raise StageFailed(job.label, code, _cause(tail, code), log)


def _cause(lines: deque[str], code: int) -> str:
    """The most telling line of a failed stage's output."""
    clean = [line.split("\r")[-1].strip() for line in lines]
    clean = [line for line in clean if line and not line.startswith("Traceback")]
    for line in reversed(clean):
        if _CAUSE.search(line):
            return line
    if clean:
        return clean[-1]
    return "killed by a signal" if code < 0 else "no output"
