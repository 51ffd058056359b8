"""``recipe.yaml``: what a recipe runs, parsed and validated.

A recipe is a header comment (what it trains on, sizes, expected time) and::

    name: fsdd
    exp: exp/fsdd                    # experiment folder (``--exp`` overrides)
    models: [res_indrnn, irnn, lstm] # compared models; stages with per_model run once for each
    vars:                            # substituted as {src}; paths are relative to the working directory
      src: ../shared/data/fsdd
      lm_weight: {default: 2.0, lstm: 1.0}   # per-model value (per_model stages only)
    stages:
      - name: prep
        run: recur prep fsdd --src {src} --out {exp}/data
      - name: train
        per_model: true
        run: recur fit --config {recipe_dir}/{model}.yaml --exp_dir {exp}/{model} --trainer.devices {devices}
        workdir: "{exp}/{model}"     # resumed with --ckpt_path last when interrupted
      - name: report
        run: recur report {exp}

Built-in variables: ``exp``, ``recipe_dir``, ``devices``, ``num_nodes``, ``model`` (per-model stages).
A variable given as a mapping has one value per model (``default`` for the models it does not name);
only per_model stages may use it.
Extra keys in ``inputs`` (files or folders) are fingerprinted into the stage's stamp.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from toolkit.errors import UserError

_STAGE_KEYS = {"name", "run", "per_model", "workdir", "inputs", "help"}
_RECIPE_KEYS = {"name", "exp", "models", "vars", "stages"}
_BUILTINS = {"exp", "recipe_dir", "devices", "num_nodes", "model"}


@dataclass(frozen=True)
class Stage:
    name: str
    run: str
    per_model: bool = False
    workdir: str | None = None
    inputs: tuple[str, ...] = ()
    help: str = ""


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

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise UserError(f"{self.path}: no stage {name!r}; stages: {', '.join(s.name for s in self.stages)}")

    def index(self, name: str) -> int:
        return self.stages.index(self.stage(name))


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate ``recipe.yaml``; every problem is a ``UserError`` naming the file and key."""
    path = Path(path)
    if path.is_dir():
        path = path / "recipe.yaml"
    if not path.is_file():
        raise UserError(f"recipe not found: {path} (give recipes/<corpus>/recipe.yaml)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping with keys {sorted(_RECIPE_KEYS)}")
    unknown = set(raw) - _RECIPE_KEYS
    if unknown:
        raise UserError(f"{path}: unknown key(s) {sorted(unknown)}; valid keys: {sorted(_RECIPE_KEYS)}")
    for key in ("name", "stages"):
        if key not in raw:
            raise UserError(f"{path}: missing required key {key!r}")
    raw_vars = raw.get("vars") or {}
    if not isinstance(raw_vars, dict):
        raise UserError(f"{path}: vars must be a mapping of name: value")
    models = [str(m) for m in raw.get("models") or []]
    variables = {str(k): str(v) for k, v in raw_vars.items() if not isinstance(v, dict)}
    model_vars = {str(k): _per_model(path, str(k), v, models) for k, v in raw_vars.items() if isinstance(v, dict)}
    clash = (set(variables) | set(model_vars)) & _BUILTINS
    if clash:
        raise UserError(f"{path}: vars may not redefine built-in variable(s) {sorted(clash)}")
    stages = []
    for i, item in enumerate(raw["stages"] or []):
        if not isinstance(item, dict) or "name" not in item or "run" not in item:
            raise UserError(f"{path}: stage #{i + 1} needs at least 'name' and 'run'")
        unknown = set(item) - _STAGE_KEYS
        if unknown:
            raise UserError(
                f"{path}: stage {item['name']!r}: unknown key(s) {sorted(unknown)}; valid: {sorted(_STAGE_KEYS)}"
            )
        stage = Stage(
            name=str(item["name"]),
            run=str(item["run"]).strip(),
            per_model=bool(item.get("per_model", False)),
            workdir=item.get("workdir"),
            inputs=tuple(str(p) for p in item.get("inputs") or ()),
            help=str(item.get("help", "")),
        )
        if stage.per_model and not models:
            raise UserError(f"{path}: stage {stage.name!r} is per_model but the recipe lists no models")
        names = set(re.findall(r"{(\w+)}", stage.run + (stage.workdir or "") + "".join(stage.inputs)))
        missing = names - set(variables) - set(model_vars) - _BUILTINS
        if missing:
            raise UserError(f"{path}: stage {stage.name!r} uses undefined variable(s) {sorted(missing)}")
        per_model = sorted(names & set(model_vars))
        if per_model and not stage.per_model:
            raise UserError(f"{path}: stage {stage.name!r} is not per_model but uses per-model variable(s) {per_model}")
        if "{model}" in stage.run and not stage.per_model:
            raise UserError(f"{path}: stage {stage.name!r} uses {{model}} but is not per_model")
        stages.append(stage)
    if len({s.name for s in stages}) != len(stages):
        raise UserError(f"{path}: stage names must be unique")
    exp = str(raw.get("exp", f"exp/{raw['name']}"))
    return Recipe(path, str(raw["name"]), exp, models, stages, variables, model_vars)


def _per_model(path: Path, name: str, values: dict, models: list[str]) -> dict[str, str]:
    """A per-model variable's values, keyed by model name (and ``default``)."""
    values = {str(k): str(v) for k, v in values.items()}
    unknown = sorted(set(values) - set(models) - {"default"})
    if unknown:
        raise UserError(f"{path}: vars: {name}: {unknown} not among the models {models} (or 'default')")
    uncovered = [m for m in models if m not in values]
    if uncovered and "default" not in values:
        raise UserError(f"{path}: vars: {name}: no value for model(s) {uncovered}; give them or a 'default'")
    return values
