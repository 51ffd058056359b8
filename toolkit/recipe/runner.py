"""Runs a recipe's stages in order; each stage is skipped when its stamp says it is done.

A stage's stamp (``<exp>/.stamps/<stage>[-<model>][-<set>].json``) records what decided its result: its
command (with the experiment folder and the recipe folder as placeholders, so ``exp/x`` and ``/abs/exp/x``
are the same experiment), the content of every config file its command names (.yaml, .cfg, ...) and of its
declared ``inputs``, and the fingerprints of the stages it depends on (every earlier shared stage, and the
earlier stages of its own model and set; a shared stage after per-model ones depends on all of them,
whatever ``--models`` / ``--sets`` select). A rerun skips what is done and redoes what changed, and
everything downstream of it; ``recur run --list`` says why a stage is to do (never run, interrupted, which
config or input changed, the command, which upstream stage).

Files inside the experiment folder are never fingerprinted: they are made by earlier stages (``cmvn.json``,
a decode's ``.json``), whose own change is covered by the dependency, and they appear during a run, so
fingerprinting them would make a stage planned before they existed look changed afterwards.

A stage that trains (``workdir``) and was interrupted (Ctrl-C, or even ``kill -9``) resumes from
``<workdir>/checkpoints/last.ckpt``; if its config or upstream changed meanwhile the old run is moved aside
(``<workdir>.stale-<time>``), never overwritten.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from toolkit.errors import UserError

from .spec import Recipe, Stage, expand, references

# files named on a stage's command line with these suffixes are configs: their content is part of the
# stamp (other paths on the command line are often the stage's own outputs)
CONFIG_SUFFIXES = {".yaml", ".yml", ".cfg", ".conf", ".toml", ".ini", ".json"}
OUTPUT_FLAGS = {"--out", "--output", "-o"}
_OPTION = re.compile(r"(?<![\w-])--[a-zA-Z][\w-]*")
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
    # the command and inputs with the experiment folder and the recipe folder as placeholders (the stamp's view)
    canon_argv: list[str] = field(default_factory=list)
    canon_inputs: list[str] = field(default_factory=list)
    set: str | None = None

    @property
    def label(self) -> str:
        axes = [a for a in (self.model, self.set) if a]
        return f"{self.stage.name}[{','.join(axes)}]" if axes else self.stage.name

    @property
    def slug(self) -> str:
        return "-".join(a for a in (self.stage.name, self.model, self.set) if a)


@dataclass
class Planned:
    """A job with what decides whether it is done: its own fingerprint and those of the jobs it depends on."""

    job: Job
    key: str
    upstream: str
    needs: dict[str, str]  # label -> key of every job it depends on
    facts: dict  # command, files, inputs: what ``key`` is the hash of


STAMP_VERSION = 2
PLACEHOLDERS = {"exp": "{exp}", "recipe_dir": "{recipe_dir}"}


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


def _hash(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def apply_overrides(recipe: Recipe, overrides: dict[str, str]) -> Recipe:
    """The recipe with its variables set by ``--set`` (validated again: a value may use other variables).

    ``KEY=VALUE`` sets a variable for every model and set; ``KEY.NAME=VALUE`` sets its value for one
    model (or one set) where only per_model (per_set) stages use it: a shared variable becomes a
    per-model (per-set) one, its value the default.
    """
    shared = dict(recipe.vars)
    tables = {
        "model": {k: dict(v) for k, v in recipe.model_vars.items()},
        "set": {k: dict(v) for k, v in recipe.set_vars.items()},
    }
    known = set(shared) | set(tables["model"]) | set(tables["set"])
    for item, value in overrides.items():
        key, _, name = item.partition(".")
        if key not in known:
            raise UserError(
                f"--set {item}: not a variable of {recipe.path} (vars: {', '.join(sorted(known)) or 'none'})"
            )
        if not name:
            shared[key] = value
            tables["model"].pop(key, None)
            tables["set"].pop(key, None)
            continue
        axis = "model" if name in recipe.models else "set" if name in recipe.sets else None
        if axis is None:
            sets = f"; sets: {', '.join(recipe.sets)}" if recipe.sets else ""
            raise UserError(
                f"--set {item}: {name!r} is not a model of {recipe.path} (models: {', '.join(recipe.models)}{sets})"
            )
        other = "set" if axis == "model" else "model"
        if key in tables[other]:
            raise UserError(f"--set {item}: {key} has one value per {other}, not per {axis}")
        flag = "per_model" if axis == "model" else "per_set"
        users = [s.name for s in recipe.stages if not getattr(s, flag) and key in recipe.uses(s)]
        if users:
            raise UserError(
                f"--set {item}: {key} is used by shared stage(s) {users} (not {flag}); set it for all (--set {key}=...)"
            )
        if key in shared:
            tables[axis][key] = {"default": shared.pop(key)}
        tables[axis][key][name] = value
    out = replace(recipe, vars=shared, model_vars=tables["model"], set_vars=tables["set"])
    if overrides:
        out.validate(where=f"--set {' '.join(f'{k}={v}' for k, v in overrides.items())}")
    return out


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
        sets: list[str] | None = None,
    ):
        for flag, chosen, names in (("--models", models, recipe.models), ("--sets", sets, recipe.sets)):
            unknown = [m for m in chosen or () if m not in names]
            if unknown:
                raise UserError(
                    f"{flag}: {', '.join(unknown)} not in {recipe.path} ({flag[2:]}: {', '.join(names) or 'none'})"
                )
        if devices < 1 or num_nodes < 1:
            raise UserError("--devices and --num-nodes must be at least 1")
        self.recipe, self.force, self.echo = recipe, force, echo
        self.exp = Path(exp or recipe.exp)
        self.models = models or recipe.models
        self.sets = sets or recipe.sets
        self.spec = apply_overrides(recipe, overrides or {})
        self.builtins = {
            "exp": str(self.exp),
            "recipe_dir": str(recipe.path.parent),
            "devices": str(devices),
            "num_nodes": str(num_nodes),
        }
        self._legacy: dict[tuple[str, bool], str] = {}

    # --- planning ------------------------------------------------------------------------------
    def jobs(self, start: str | None = None, stop: str | None = None, every_model: bool = False) -> list[Job]:
        """The jobs of the stages from ``start`` to ``stop``, for the selected models and sets (or all)."""
        stages = self.recipe.stages
        first = self.recipe.index(start) if start else 0
        last = self.recipe.index(stop) if stop else len(stages) - 1
        if first > last:
            raise UserError(f"--stage {start} comes after --stop-stage {stop}")
        models = self.recipe.models if every_model else self.models
        sets = self.recipe.sets if every_model else self.sets
        out = []
        for stage in self.spec.stages[first : last + 1]:
            for model in models if stage.per_model else [None]:
                for data_set in sets if stage.per_set else [None]:
                    out.append(self._job(stage, model, data_set))
        return out

    def _values(self, model: str | None, data_set: str | None, builtins: dict[str, str]) -> dict[str, str]:
        """Every variable's value for one job, other variables in it expanded."""
        spec = self.spec
        variables = dict(spec.vars)
        fixed = dict(builtins)
        if model:
            fixed["model"] = model
            variables.update({k: v.get(model, v.get("default", "")) for k, v in spec.model_vars.items()})
        if data_set:
            fixed["set"] = data_set
            variables.update({k: v.get(data_set, v.get("default", "")) for k, v in spec.set_vars.items()})
        return {**{k: expand(v, variables, fixed) for k, v in variables.items()}, **fixed}

    def _job(self, stage: Stage, model: str | None, data_set: str | None) -> Job:
        values = self._values(model, data_set, self.builtins)
        canon = self._values(model, data_set, {**self.builtins, **PLACEHOLDERS})
        argv = shlex.split(stage.run.format(**values))
        workdir = Path(stage.workdir.format(**values)) if stage.workdir else None
        inputs = [Path(p.format(**values)) for p in stage.inputs]
        canon_argv = shlex.split(stage.run.format(**canon))
        canon_inputs = [p.format(**canon) for p in stage.inputs]
        return Job(stage, model, argv, workdir, inputs, canon_argv, canon_inputs, data_set)

    def _in_exp(self, path: str | Path) -> bool:
        """Whether ``path`` lies in the experiment folder (made by a stage, not given to the recipe)."""
        exp = os.path.abspath(self.exp)
        p = os.path.abspath(path)
        return p == exp or p.startswith(exp.rstrip(os.sep) + os.sep)

    def _config_words(self, job: Job) -> list[int]:
        """Indices of the command-line words that name config files (not outputs, not made by a stage)."""
        out = []
        for i, word in enumerate(job.argv):
            if i and job.argv[i - 1] in OUTPUT_FLAGS:
                continue
            if word.startswith("-") and "=" in word:
                word = word.partition("=")[2]
            if Path(word).suffix in CONFIG_SUFFIXES and not self._in_exp(word) and Path(word).is_file():
                out.append(i)
        return out

    def facts(self, job: Job) -> dict:
        """What decides a job's result apart from its upstream: its command (placeholders for the experiment
        and recipe folders), the content of the config files it names and of its declared inputs."""
        canon = job.canon_argv if len(job.canon_argv) == len(job.argv) else job.argv
        files = []
        for i in self._config_words(job):
            word = job.argv[i].partition("=")[2] if job.argv[i].startswith("-") else job.argv[i]
            files.append([canon[i], job.argv[i], fingerprint(Path(word))])
        inputs = [
            [c, str(p), fingerprint(p)]
            for c, p in zip(job.canon_inputs, job.inputs, strict=True)
            if not self._in_exp(p)
        ]
        return {"command": canon, "files": files, "inputs": inputs}

    @staticmethod
    def _key(facts: dict) -> str:
        # the paths as written (element 1) are left out: only the placeholders' spelling and the content count
        return _hash(
            {
                "version": STAMP_VERSION,
                "command": facts["command"],
                "files": [[c, fp] for c, _, fp in facts["files"]],
                "inputs": [[c, fp] for c, _, fp in facts["inputs"]],
            }
        )

    def key(self, job: Job) -> str:
        """Fingerprint of everything that decides a stage's result (its upstream apart)."""
        return self._key(self.facts(job))

    def _stamp(self, job: Job, suffix: str = "") -> Path:
        return self.exp / ".stamps" / f"{job.slug}{suffix}.json"

    @staticmethod
    def depends(job: Job, earlier: Job) -> bool:
        """Whether ``job`` consumes what ``earlier`` (a stage before it) produces: on each axis (model,
        set) one of them has none or they have the same."""
        return all(a is None or b is None or a == b for a, b in ((job.model, earlier.model), (job.set, earlier.set)))

    def plan(self, start: str | None = None, stop: str | None = None) -> list[Planned]:
        """The selected jobs with their own key and the keys of what they depend on. Dependencies are over
        the whole recipe (every stage, every model), whatever the selection: a shared stage's stamp does not
        depend on which models one invocation ran."""
        everything = self.jobs(every_model=True)
        facts = {j.label: self.facts(j) for j in everything}
        keys = {label: self._key(f) for label, f in facts.items()}
        selected = {j.label for j in self.jobs(start, stop)}
        out = []
        for i, job in enumerate(everything):
            if job.label in selected:
                needs = {e.label: keys[e.label] for e in everything[:i] if self.depends(job, e)}
                upstream = _hash([[label, key] for label, key in needs.items()])
                out.append(Planned(job, keys[job.label], upstream, needs, facts[job.label]))
        return out

    def status(self, start: str | None = None, stop: str | None = None) -> list[tuple[Job, str | None]]:
        """(job, why it is to do, or None when it is done) for the selected jobs, as ``run`` judges them."""
        return [(p.job, self.why(p)) for p in self.plan(start, stop)]

    def states(self, start: str | None = None, stop: str | None = None) -> list[tuple[Job, bool]]:
        """(job, done) for the selected jobs, as ``run`` would judge them."""
        return [(job, why is None) for job, why in self.status(start, stop)]

    def why(self, p: Planned) -> str | None:
        """Why the job must run (never run, interrupted, what changed), or None when its stamp holds."""
        stamp = self._read(self._stamp(p.job))
        if stamp is None:
            started = self._read(self._stamp(p.job, ".started"))
            if started is None:
                return "never run"
            if p.job.workdir is not None and self._resumable(p, started):
                return f"interrupted or failed; resumes from {p.job.workdir / 'checkpoints' / 'last.ckpt'}"
            return "interrupted or failed; runs again"
        if stamp.get("version") != STAMP_VERSION:
            if self._legacy_holds(p, stamp):
                return None
            return "its stamp was written by an older recur without what it ran with"
        if stamp.get("key") != p.key:
            return self._changed(p.job, p.facts, stamp)
        if stamp.get("upstream") != p.upstream:
            old = stamp.get("needs") or {}
            changed = [label for label, key in p.needs.items() if old.get(label) != key]
            gone = [label for label in old if label not in p.needs]
            if changed:
                more = f" and {len(changed) - 3} more" if len(changed) > 4 else ""
                return f"upstream {', '.join(changed[:3] if more else changed)}{more} changed"
            if gone:
                return f"upstream {', '.join(gone)} no longer in the recipe"
            return "upstream changed"
        return None

    def _changed(self, job: Job, facts: dict, stamp: dict) -> str:
        """What differs between the stamp and the job now (the first difference found)."""
        old_cmd, new_cmd = stamp.get("command") or [], facts["command"]
        if old_cmd != new_cmd:
            for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old_cmd, b=new_cmd, autojunk=False).get_opcodes():
                if tag != "equal":
                    # a changed value is shown with its option: --beam 8 -> --beam 16
                    first = (old_cmd[i1:i2] or new_cmd[j1:j2])[0]
                    if i1 and j1 and old_cmd[i1 - 1].startswith("-") and not first.startswith("-"):
                        i1, j1 = i1 - 1, j1 - 1
                    before, after = shlex.join(old_cmd[i1:i2]) or "(nothing)", shlex.join(new_cmd[j1:j2]) or "(nothing)"
                    return f"command changed: {before} -> {after}"
        for kind, noun in (("files", "config"), ("inputs", "input")):
            old = {c: fp for c, _, fp in stamp.get(kind) or []}
            for canon, path, fp in facts[kind]:
                if canon not in old:
                    return f"{noun} {path} is new"
                if old[canon] != fp:
                    return f"{noun} {path} {'changed' if fp is not None else 'is missing'}"
        return "its fingerprint changed"

    @staticmethod
    def _read(path: Path) -> dict | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    # --- stamps written before version 2 -----------------------------------------------------------
    def _legacy_key(self, job: Job, made: bool) -> str:
        """The key an older recur computed: the command as written, config files that existed when it
        planned (``made``: including those in the experiment folder), declared inputs."""
        cache = (job.label, made)
        if cache not in self._legacy:
            outputs = {b for a, b in zip(job.argv, job.argv[1:], strict=False) if a in OUTPUT_FLAGS}
            files = {
                a: fingerprint(Path(a))
                for a in job.argv
                if a not in outputs
                and Path(a).suffix in CONFIG_SUFFIXES
                and Path(a).is_file()
                and (made or not self._in_exp(a))
            }
            inputs = {str(p): fingerprint(p) for p in job.inputs}
            blob = json.dumps({"argv": job.argv, "files": files, "inputs": inputs}, sort_keys=True)
            self._legacy[cache] = hashlib.sha256(blob.encode()).hexdigest()
        return self._legacy[cache]

    def _legacy_holds(self, p: Planned, stamp: dict) -> bool:
        """Whether a stamp of the older format matches what that version computed, planned before the
        experiment's own files existed (a first run) or after (a later one)."""
        if "upstream" not in stamp:  # older still: it cannot say whether its upstream changed since
            return False
        if not hasattr(self, "_every_job"):
            self._every_job = {j.label: j for j in self.jobs(every_model=True)}
        everything = self._every_job
        for made in (False, True):
            needs = [[label, self._legacy_key(everything[label], made)] for label in p.needs]
            upstream = hashlib.sha256(json.dumps(needs).encode()).hexdigest()
            if stamp.get("key") == self._legacy_key(p.job, made) and stamp.get("upstream") == upstream:
                return True
        return False

    def _resumable(self, p: Planned, started: dict) -> bool:
        """Whether an interrupted training may go on from its last checkpoint: same command, configs and
        upstream as when it started, and a checkpoint to go on from."""
        if not (p.job.workdir / "checkpoints" / "last.ckpt").is_file():
            return False
        if "version" not in started:  # written by an older recur: its key only
            return started.get("key") in (self._legacy_key(p.job, False), self._legacy_key(p.job, True))
        return started.get("key") == p.key and started.get("upstream") == p.upstream

    # --- running -------------------------------------------------------------------------------
    def run(self, start: str | None = None, stop: str | None = None) -> list[tuple[str, str]]:
        """Run the selected stages; returns (label, "done" | "skipped") per job."""
        from toolkit.data.io import write_json

        results = []
        for p in self.plan(start, stop):
            job = p.job
            why = self.why(p)
            if not self.force and why is None:
                self.echo(f"== {job.label}: up to date, skipped")
                results.append((job.label, "skipped"))
                continue
            argv = list(job.argv)
            if job.workdir is not None:
                argv += self._resume_args(p)
            write_json(
                self._stamp(job, ".started"),
                {"version": STAMP_VERSION, "key": p.key, "upstream": p.upstream, "started": time.time()},
            )
            self.echo(f"== {job.label}: {shlex.join(argv)}" + ("" if self.force else f"  ({why})"))
            t0 = time.time()
            self._execute(job, argv)
            write_json(
                self._stamp(job),
                {
                    "version": STAMP_VERSION,
                    "key": p.key,
                    "upstream": p.upstream,
                    "needs": p.needs,
                    **p.facts,
                    "argv": argv,
                    "finished": time.time(),
                    "seconds": time.time() - t0,
                },
            )
            self._stamp(job, ".started").unlink(missing_ok=True)
            results.append((job.label, "done"))
        return results

    def _resume_args(self, p: Planned) -> list[str]:
        job = p.job
        if not job.workdir.exists():
            return []
        started = self._read(self._stamp(job, ".started"))
        if started is not None and not self.force and self._resumable(p, started):
            self.echo(f"== {job.label}: resuming from {job.workdir / 'checkpoints' / 'last.ckpt'}")
            return ["--ckpt_path", "last"]
        stale = job.workdir.with_name(f"{job.workdir.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
        n = 1
        while stale.exists():  # moved aside twice within a second
            n += 1
            stale = stale.with_name(f"{job.workdir.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
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
            try:
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
            except KeyboardInterrupt:
                # Ctrl-C reached the stage too (same process group): let it stop cleanly (a training saves
                # nothing more, but must not be left running behind the runner), then stop the recipe
                out.write("\n===== interrupted (Ctrl-C)\n")
                _stop(proc)
                raise
            finally:
                proc.stdout.close()
        if code != 0:
            raise StageFailed(job.label, code, self._advice(job, argv, _cause(tail, code)), log)

    def _advice(self, job: Job, argv: list[str], cause: str) -> str:
        """``cause``, and when it suggests options the recipe's command does not pass (``use --download``),
        how to act on them: `recur run` cannot pass them, so the stage is run by hand, or a value it does
        take is changed with --set."""
        given = {word.split("=")[0] for word in argv if word.startswith("--")}
        foreign = sorted({opt for opt in _OPTION.findall(cause) if opt not in given})
        if not foreign:
            return cause
        names = sorted(references(job.stage.run) & set(self.recipe.vars))
        values = f"; or change its values with --set ({', '.join(names)})" if names else ""
        return (
            f"{cause} [{' '.join(foreign)}: not an option of recur run; run the stage by hand: "
            f"{shlex.join([*argv, *foreign])}{values}]"
        )


def _stop(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """Wait for an interrupted stage to exit; SIGINT it (if it did not get the Ctrl-C), then kill it."""
    for sig, wait in ((None, grace / 2), (signal.SIGINT, grace / 2), (signal.SIGKILL, 5.0)):
        if sig is not None:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:  # Ctrl-C again: no more waiting
            proc.kill()
            return


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
