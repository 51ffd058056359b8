"""``recipe.yaml``: what a recipe runs, parsed and validated.

A recipe is a header comment (what it trains on, sizes, expected time) and::

    name: fsdd
    exp: exp/fsdd                    # experiment folder (``--exp`` overrides)
    models: [res_indrnn, irnn, lstm] # compared models; stages with per_model run once for each
    sets: [dev, test]                # data sets; stages with per_set run once for each (--sets selects)
    vars:                            # substituted as {src}; paths are relative to the working directory
      src: ../shared/data/fsdd
      lm_weight: {default: 2.0, lstm: 1.0}   # per-model value (per_model stages only)
      beam: {default: 8, test: 32}           # per-set value (per_set stages only)
      manifest: "{exp}/data/{set}.jsonl"     # a value may use other variables
    stages:
      - name: prep
        run: recur prep fsdd --src {src} --out {exp}/data
      - name: train
        per_model: true
        run: recur fit --config {recipe_dir}/{model}.yaml --exp_dir {exp}/{model} --trainer.devices {devices}
        workdir: "{exp}/{model}"     # resumed with --ckpt_path last when interrupted
      - name: decode
        per_model: true
        per_set: true                # once per model and set: decode[res_indrnn,dev], decode[res_indrnn,test], ...
        run: recur decode --model {exp}/{model} {manifest} --set {set} --beam {beam}
      - name: report
        run: recur report {exp}

Built-in variables: ``exp``, ``recipe_dir`` (the folder of the file that wrote it), ``devices``,
``num_nodes``, ``model`` (per_model stages), ``set`` (per_set stages). A variable given as a mapping has
one value per model, or one per set (``default`` for those it does not name); only per_model (per_set)
stages may use it. A variable's value may use other variables, built-ins included: a stage that uses
it uses them too (``{{`` and ``}}`` are literal braces). A stage depends on every earlier stage that
shares its model and set or has none (a per-set stage on its own model's training; a shared stage after
per-model ones on all of them). Extra keys in ``inputs`` (files or folders) are fingerprinted into the
stage's stamp.

A recipe may build on another (``extends``, a path relative to this file; a chain is fine)::

    # header: what this variant changes
    extends: recipe.yaml
    name: librispeech_960            # name, exp, models, sets: inherited unless given (given: replaced)
    exp: exp/librispeech_960         # give exp, or the variant shares (and redoes) the base's experiment
    vars: {train_set: train-960}     # merged: a name given here replaces the base's value; new names add
    stages:                          # merged by name into the base's list, in the base's order:
      - name: merge                  #   a new name is inserted after (or before) the stage named,
        after: prep                  #   else appended
        run: sh -c "cat ... > {exp}/data/train-960.jsonl"
      - name: train                  #   a base stage's name replaces that stage, every key
        per_model: true
        run: ...
      - {name: decode_lexicon, remove: true}   # drops a base stage

Inherited per-model and per-set values of models and sets the variant no longer lists are dropped.

Naming, in every ``recipes/<corpus>/``: ``recipe.yaml`` is the default, sized to run on this kind of
machine (2 CPU cores) where that makes sense; ``recipe_full.yaml`` extends it for the paper-size run (a
GPU); any other variant is ``recipe_<what>.yaml`` (``recipe_phones.yaml``, ``recipe_960.yaml``). The
configs are ``base.yaml`` (shared by every model) and one ``<model>.yaml`` per model on top of it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from toolkit.errors import UserError

_STAGE_KEYS = {"name", "run", "per_model", "per_set", "workdir", "inputs", "help"}
_PLACING_KEYS = {"after", "before", "remove"}  # stages of a recipe that extends another
_RECIPE_KEYS = {"extends", "name", "exp", "models", "sets", "vars", "stages"}
_BUILTINS = {"exp", "recipe_dir", "devices", "num_nodes", "model", "set"}
# {name} in a template; {{ and }} are literal braces
_REF = re.compile(r"\{\{|\}\}|\{(\w+)\}")


def references(text: str) -> set[str]:
    """The variable names ``text`` uses."""
    return {m.group(1) for m in _REF.finditer(text) if m.group(1)}


def expand(text: str, variables: dict[str, str], fixed: dict[str, str]) -> str:
    """``text`` with every ``{name}`` replaced: a variable by its own expanded value, a ``fixed`` name
    (built-ins) by its value as is; ``{{``/``}}`` become braces, unknown names stay."""

    def one(match: re.Match, seen: tuple[str, ...]) -> str:
        token, name = match.group(0), match.group(1)
        if name is None:
            return token[0]
        if name in fixed:
            return fixed[name]
        if name in variables and name not in seen:
            return _REF.sub(lambda m: one(m, (*seen, name)), variables[name])
        return token

    return _REF.sub(lambda m: one(m, ()), text)


@dataclass(frozen=True)
class Stage:
    name: str
    run: str
    per_model: bool = False
    workdir: str | None = None
    inputs: tuple[str, ...] = ()
    help: str = ""
    per_set: bool = False

    def texts(self) -> str:
        return self.run + (self.workdir or "") + "".join(self.inputs)


@dataclass
class Recipe:
    path: Path
    name: str
    exp: str
    models: list[str]
    stages: list[Stage]
    vars: dict[str, str] = field(default_factory=dict)
    # variables with one value per model: name -> {model or "default": value}
    model_vars: dict[str, dict[str, str]] = field(default_factory=dict)
    sets: list[str] = field(default_factory=list)
    # variables with one value per set: name -> {set or "default": value}
    set_vars: dict[str, dict[str, str]] = field(default_factory=dict)

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise UserError(f"{self.path}: no stage {name!r}; stages: {', '.join(s.name for s in self.stages)}")

    def index(self, name: str) -> int:
        return self.stages.index(self.stage(name))

    def uses(self, stage: Stage) -> set[str]:
        """Every variable the stage uses, directly or through the values of the variables it uses."""
        return _closure(references(stage.texts()), self._refs())

    def _refs(self) -> dict[str, set[str]]:
        refs = {k: references(v) for k, v in self.vars.items()}
        for table in (self.model_vars, self.set_vars):
            refs.update({k: set().union(*map(references, v.values())) for k, v in table.items()})
        return refs

    def validate(self, where: str | None = None) -> None:
        """Every stage uses only defined variables, per-model ones only if per_model, per-set ones only if
        per_set; no variable uses itself. ``where`` prefixes the messages (default: the recipe's path)."""
        where = where or str(self.path)
        refs = self._refs()
        for name in refs:
            if name in _closure(refs[name], refs, stop=name):
                raise UserError(f"{where}: vars: {name} uses itself (through the values of others)")
        defined = set(self.vars) | set(self.model_vars) | set(self.set_vars) | _BUILTINS
        for name, names in refs.items():
            missing = names - defined
            if missing:
                raise UserError(f"{where}: vars: {name} uses undefined variable(s) {sorted(missing)}")
        for stage in self.stages:
            names = self.uses(stage)
            missing = names - defined
            if missing:
                raise UserError(f"{where}: stage {stage.name!r} uses undefined variable(s) {sorted(missing)}")
            for axis, table, flag in (
                ("model", self.model_vars, stage.per_model),
                ("set", self.set_vars, stage.per_set),
            ):
                if flag:
                    continue
                varying = sorted(names & set(table))
                if varying:
                    raise UserError(
                        f"{where}: stage {stage.name!r} is not per_{axis} but uses per-{axis} variable(s) {varying}"
                    )
                if axis in names:
                    raise UserError(f"{where}: stage {stage.name!r} uses {{{axis}}} but is not per_{axis}")


def _closure(names: set[str], refs: dict[str, set[str]], stop: str | None = None) -> set[str]:
    """``names`` and every name their values use, transitively (not expanding ``stop``)."""
    out, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out.add(name)
        if name != stop:
            todo.extend(refs.get(name, ()))
    return out


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate ``recipe.yaml`` (and what it extends); every problem is a ``UserError`` naming
    the file and key."""
    path = Path(path)
    if path.is_dir():
        path = path / "recipe.yaml"
    raw = _merged(path, ())
    return _build(path, raw)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"recipe not found: {path} (give recipes/<corpus>/recipe.yaml)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{where}: not valid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping with keys {sorted(_RECIPE_KEYS - {'extends'})}")
    unknown = set(raw) - _RECIPE_KEYS
    if unknown:
        raise UserError(f"{path}: unknown key(s) {sorted(unknown)}; valid keys: {sorted(_RECIPE_KEYS)}")
    if raw.get("vars") is not None and not isinstance(raw["vars"], dict):
        raise UserError(f"{path}: vars must be a mapping of name: value")
    for key in ("models", "sets"):
        if raw.get(key) is not None and not isinstance(raw[key], list):
            raise UserError(f"{path}: {key} must be a list of names")
    if raw.get("stages") is not None and not isinstance(raw["stages"], list):
        raise UserError(f"{path}: stages must be a list")
    for i, item in enumerate(raw.get("stages") or []):
        if not isinstance(item, dict) or "name" not in item:
            raise UserError(f"{path}: stage #{i + 1} needs at least 'name' and 'run'")
        allowed = _STAGE_KEYS | (_PLACING_KEYS if "extends" in raw else set())
        unknown = set(item) - allowed
        if unknown:
            extra = " (after/before/remove: only in a recipe that extends another)" if unknown & _PLACING_KEYS else ""
            raise UserError(
                f"{path}: stage {item['name']!r}: unknown key(s) {sorted(unknown)}; valid: {sorted(allowed)}{extra}"
            )
    return raw


def _here(text: object, folder: str | None) -> object:
    """``text`` with ``{recipe_dir}`` made the folder of the file that wrote it (None: left as it is)."""
    if folder is None or not isinstance(text, str):
        return text
    folder = folder.replace("{", "{{").replace("}", "}}")
    return re.sub(r"(?<!\{)\{recipe_dir\}(?!\})", lambda m: folder, text)


def _localised(raw: dict, folder: str | None) -> dict:
    """The file's stages and variables with its own ``{recipe_dir}`` (a file of another folder than the
    recipe that is run: the configs it names are next to it)."""
    raw = dict(raw)
    if folder is None:
        return raw
    out = {}
    for k, v in (raw.get("vars") or {}).items():
        out[k] = {kk: _here(str(vv), folder) for kk, vv in v.items()} if isinstance(v, dict) else _here(str(v), folder)
    raw["vars"] = out
    stages = []
    for item in raw.get("stages") or []:
        item = dict(item)
        for key in ("run", "workdir"):
            if key in item:
                item[key] = _here(item[key], folder)
        if "inputs" in item:
            item["inputs"] = [_here(str(p), folder) for p in item["inputs"] or ()]
        stages.append(item)
    raw["stages"] = stages
    return raw


def _merged(path: Path, chain: tuple[str, ...], top: Path | None = None) -> dict:
    """The raw recipe at ``path`` with what it extends merged in (see the module docstring)."""
    top = top or path
    key = os.path.abspath(path)
    if key in chain:
        raise UserError(f"{path}: extends: it extends itself (through {' -> '.join(chain)})")
    raw = _read(path)
    same = os.path.abspath(path.parent) == os.path.abspath(top.parent)
    raw = _localised(raw, None if same else str(path.parent))
    if "extends" not in raw:
        for key in ("name", "stages"):
            if key not in raw:
                raise UserError(f"{path}: missing required key {key!r}")
        return raw
    if not isinstance(raw["extends"], str) or not raw["extends"].strip():
        raise UserError(f"{path}: extends: give the path of the recipe it builds on (relative to {path.parent})")
    base_path = Path(os.path.normpath(path.parent / raw["extends"]))
    if not base_path.is_file():
        raise UserError(f"{path}: extends: {raw['extends']} not found (looked for {base_path})")
    base = _merged(base_path, (*chain, key), top)
    _build(base_path, base)  # the base is a recipe of its own: its own errors are reported as its own
    out = {k: raw[k] if k in raw else base.get(k) for k in ("name", "exp", "models", "sets")}
    out = {k: v for k, v in out.items() if v is not None}
    names = {str(m) for m in out.get("models") or []} | {str(s) for s in out.get("sets") or []} | {"default"}
    variables = {}
    for k, v in (base.get("vars") or {}).items():
        variables[k] = {kk: vv for kk, vv in v.items() if str(kk) in names} if isinstance(v, dict) else v
    variables.update(raw.get("vars") or {})
    out["vars"] = variables
    out["stages"] = _merge_stages(path, list(base.get("stages") or []), raw.get("stages") or [])
    return out


def _merge_stages(path: Path, stages: list[dict], changes: list[dict]) -> list[dict]:
    for item in changes:
        name = item["name"]
        names = [s["name"] for s in stages]
        if item.get("remove"):
            if name not in names:
                raise UserError(f"{path}: stage {name!r}: remove: the base has no such stage ({', '.join(names)})")
            if set(item) - {"name", "remove"}:
                raise UserError(f"{path}: stage {name!r}: remove: true takes no other key")
            del stages[names.index(name)]
            continue
        if "run" not in item:
            raise UserError(f"{path}: stage #{name!r} needs at least 'name' and 'run'")
        place = {k: item[k] for k in ("after", "before") if k in item}
        stage = {k: v for k, v in item.items() if k not in _PLACING_KEYS}
        if name in names:
            if place:
                raise UserError(f"{path}: stage {name!r} replaces the base's stage in place: after/before do not apply")
            stages[names.index(name)] = stage
            continue
        if len(place) > 1:
            raise UserError(f"{path}: stage {name!r}: give after or before, not both")
        if not place:
            stages.append(stage)
            continue
        ((where, other),) = place.items()
        if other not in names:
            raise UserError(f"{path}: stage {name!r}: {where}: no stage {other!r} ({', '.join(names)})")
        stages.insert(names.index(other) + (where == "after"), stage)
    return stages


def _build(path: Path, raw: dict) -> Recipe:
    """A validated ``Recipe`` from its merged raw mapping."""
    raw_vars = raw.get("vars") or {}
    models = [str(m) for m in raw.get("models") or []]
    sets = [str(s) for s in raw.get("sets") or []]
    both = sorted(set(models) & set(sets))
    if both:
        raise UserError(f"{path}: {both} named both as a model and as a set: a per-model or per-set value is ambiguous")
    for key, names in (("models", models), ("sets", sets)):
        if len(set(names)) != len(names):
            raise UserError(f"{path}: {key}: names must be unique")
    # a mapping with a default alone (an inherited one whose models or sets are gone) is one value for all
    raw_vars = {k: v["default"] if isinstance(v, dict) and set(v) == {"default"} else v for k, v in raw_vars.items()}
    variables = {str(k): str(v) for k, v in raw_vars.items() if not isinstance(v, dict)}
    model_vars, set_vars = {}, {}
    for k, v in raw_vars.items():
        if isinstance(v, dict):
            axis, values = _varying(path, str(k), v, models, sets)
            (model_vars if axis == "model" else set_vars)[str(k)] = values
    clash = (set(variables) | set(model_vars) | set(set_vars)) & _BUILTINS
    if clash:
        raise UserError(f"{path}: vars may not redefine built-in variable(s) {sorted(clash)}")
    stages = []
    for i, item in enumerate(raw["stages"] or []):
        if not isinstance(item, dict) or "name" not in item or "run" not in item:
            raise UserError(f"{path}: stage #{i + 1} needs at least 'name' and 'run'")
        stage = Stage(
            name=str(item["name"]),
            run=str(item["run"]).strip(),
            per_model=bool(item.get("per_model", False)),
            workdir=item.get("workdir"),
            inputs=tuple(str(p) for p in item.get("inputs") or ()),
            help=str(item.get("help", "")),
            per_set=bool(item.get("per_set", False)),
        )
        if stage.per_model and not models:
            raise UserError(f"{path}: stage {stage.name!r} is per_model but the recipe lists no models")
        if stage.per_set and not sets:
            raise UserError(f"{path}: stage {stage.name!r} is per_set but the recipe lists no sets")
        stages.append(stage)
    if len({s.name for s in stages}) != len(stages):
        raise UserError(f"{path}: stage names must be unique")
    exp = str(raw.get("exp", f"exp/{raw['name']}"))
    recipe = Recipe(path, str(raw["name"]), exp, models, stages, variables, model_vars, sets, set_vars)
    recipe.validate()
    return recipe


def _varying(path: Path, name: str, values: dict, models: list[str], sets: list[str]) -> tuple[str, dict[str, str]]:
    """Whether a mapping variable varies by model or by set, and its values keyed by model/set (and
    ``default``)."""
    values = {str(k): str(v) for k, v in values.items()}
    named = set(values) - {"default"}
    if named and named <= set(sets):
        axis, names = "set", sets
    else:
        axis, names = "model", models
    unknown = sorted(named - set(names))
    if unknown:
        among = f"the models {models}" + (f" or the sets {sets}" if sets else "")
        raise UserError(f"{path}: vars: {name}: {unknown} not among {among} (or 'default')")
    uncovered = [m for m in names if m not in values]
    if uncovered and "default" not in values:
        raise UserError(f"{path}: vars: {name}: no value for {axis}(s) {uncovered}; give them or a 'default'")
    return axis, values
