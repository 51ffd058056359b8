"""The recipe format's per-set axis, variables that use variables, and ``extends`` (toolkit/recipe/spec.py)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from toolkit.cli.main import main
from toolkit.errors import UserError
from toolkit.recipe import RecipeRunner, load_recipe

PY = sys.executable
LOG = "import sys\nopen(sys.argv[1], 'a').write(' '.join(sys.argv[2:]) + '\\n')\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def base(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "log.py").write_text(LOG)
    for name in ("a", "lstm"):
        (root / f"{name}.cfg").write_text(f"config {name}")
    return write(
        root / "recipe.yaml",
        f"""
        # a base recipe: one training per model, one decode per model and set
        name: tiny
        exp: {root}/exp
        models: [a, lstm]
        sets: [dev, test]
        vars:
          py: {PY}
          log: "{{py}} {root}/log.py {root}/calls.txt"
          beam: {{default: 8, test: 32}}
          manifest: "{{exp}}/data/{{set}}.jsonl"
        stages:
          - name: prep
            run: "{{log}} prep"
          - name: train
            per_model: true
            run: "{{log}} train {{model}} {{recipe_dir}}/{{model}}.cfg"
          - name: decode
            per_model: true
            per_set: true
            run: "{{log}} decode {{model}} {{manifest}} --set {{set}} --beam {{beam}}"
          - name: score
            per_set: true
            run: "{{log}} score {{set}}"
          - name: report
            run: "{{log}} report"
        """,
    )


def labels(runner: RecipeRunner, **kw) -> list[str]:
    return [j.label for j in runner.jobs(**kw)]


def quiet(recipe, **kw) -> RecipeRunner:
    return RecipeRunner(recipe, echo=lambda s: None, **kw)


def calls(root: Path) -> list[str]:
    return (root / "calls.txt").read_text().splitlines()


def test_per_set_stages_run_once_per_model_and_set(tmp_path):
    recipe = load_recipe(base(tmp_path))
    assert recipe.sets == ["dev", "test"]
    runner = quiet(recipe)
    assert labels(runner) == [
        "prep", "train[a]", "train[lstm]", "decode[a,dev]", "decode[a,test]", "decode[lstm,dev]",
        "decode[lstm,test]", "score[dev]", "score[test]", "report",
    ]  # fmt: skip
    runner.run()
    exp = tmp_path / "exp"
    # {set} substituted, also inside a variable's value; per-set values; {recipe_dir} inside a variable
    assert f"decode a {exp}/data/dev.jsonl --set dev --beam 8" in calls(tmp_path)
    assert f"decode lstm {exp}/data/test.jsonl --set test --beam 32" in calls(tmp_path)
    assert f"train a {tmp_path}/a.cfg" in calls(tmp_path)
    assert sorted(p.name for p in (exp / ".stamps").glob("decode-*.json")) == [
        "decode-a-dev.json", "decode-a-test.json", "decode-lstm-dev.json", "decode-lstm-test.json",
    ]  # fmt: skip
    assert set(dict(quiet(recipe).run()).values()) == {"skipped"}
    # --sets and --models select; a per-set stage depends on its own model's training, not on other sets
    assert labels(quiet(recipe, sets=["test"], models=["lstm"]), start="decode") == [
        "decode[lstm,test]", "score[test]", "report",
    ]  # fmt: skip
    (tmp_path / "lstm.cfg").write_text("config lstm v2")
    why = {job.label: w for job, w in quiet(recipe).status() if w}
    assert why == {
        "train[lstm]": f"config {tmp_path}/lstm.cfg changed",
        "decode[lstm,dev]": "upstream train[lstm] changed",
        "decode[lstm,test]": "upstream train[lstm] changed",
        "score[dev]": "upstream train[lstm] changed",
        "score[test]": "upstream train[lstm] changed",
        "report": "upstream train[lstm] changed",
    }


def test_set_overrides_per_set_values(tmp_path, capsys):
    path = base(tmp_path)
    recipe = load_recipe(path)

    def decodes(**overrides):
        return [" ".join(j.argv[-4:]) for j in quiet(recipe, overrides=overrides).jobs() if j.stage.name == "decode"]

    assert decodes()[:2] == ["--set dev --beam 8", "--set test --beam 32"]
    assert decodes(**{"beam.dev": "4"})[:2] == ["--set dev --beam 4", "--set test --beam 32"]
    assert decodes(beam="2")[:2] == ["--set dev --beam 2", "--set test --beam 2"]
    # a value given on the command line may use variables too
    argv = [j.argv for j in quiet(recipe, overrides={"manifest": "{exp}/other/{set}.txt"}).jobs()]
    assert argv[3][-5] == f"{tmp_path}/exp/other/dev.txt"
    with pytest.raises(UserError, match="one value per set, not per model"):
        quiet(recipe, overrides={"beam.a": "1"})
    with pytest.raises(UserError, match="undefined variable"):
        quiet(recipe, overrides={"manifest": "{nope}"})
    with pytest.raises(UserError, match="--sets: train not in"):
        quiet(recipe, sets=["train"])
    assert main(["run", str(path), "--sets", "test", "--models", "a", "--stage", "decode", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == ["decode[a,test]", "score[test]", "report"]


def test_extends_inherits_overrides_and_places_stages(tmp_path):
    base(tmp_path)
    (tmp_path / "big.cfg").write_text("bigger")
    write(
        tmp_path / "recipe_full.yaml",
        """
        # the paper-size variant
        extends: recipe.yaml
        name: tiny_full
        exp: exp_full
        models: [lstm]
        vars:
          beam: {default: 16}
          extra: "--config {recipe_dir}/big.cfg"
        stages:
          - name: merge
            after: prep
            run: "{log} merge"
          - name: train
            per_model: true
            run: "{log} train {model} {recipe_dir}/{model}.cfg {extra}"
          - name: first
            before: prep
            run: "{log} first"
          - {name: score, remove: true}
          - name: publish
            run: "{log} publish"
        """,
    )
    full = load_recipe(tmp_path / "recipe_full.yaml")
    assert (full.name, full.exp, full.models, full.sets) == ("tiny_full", "exp_full", ["lstm"], ["dev", "test"])
    assert [s.name for s in full.stages] == ["first", "prep", "merge", "train", "decode", "report", "publish"]
    jobs = {j.label: j.argv for j in quiet(full).jobs()}
    assert jobs["train[lstm]"][-4:] == ["lstm", f"{tmp_path}/lstm.cfg", "--config", f"{tmp_path}/big.cfg"]
    assert jobs["decode[lstm,test]"][-1] == "16"  # the base's per-set values replaced by the variant's
    # the base alone is unchanged
    alone = load_recipe(tmp_path / "recipe.yaml")
    assert [s.name for s in alone.stages] == ["prep", "train", "decode", "score", "report"]


def test_a_variant_in_another_folder_finds_the_bases_configs(tmp_path):
    base(tmp_path / "recipes")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/a.cfg").write_text("my a")
    write(
        tmp_path / "mine/recipe.yaml",
        """
        # my variant: the base's stages, one of my own configs
        extends: ../recipes/recipe.yaml
        exp: exp_mine
        vars: {mine: "{recipe_dir}/a.cfg"}
        stages:
          - name: extra
            run: "{log} extra {mine} {recipe_dir}/a.cfg"
        """,
    )
    jobs = {j.label: j.argv for j in quiet(load_recipe(tmp_path / "mine/recipe.yaml")).jobs()}
    assert jobs["train[a]"][-1] == f"{tmp_path}/recipes/a.cfg"  # inherited stage: the base's folder
    assert jobs["extra"][-2:] == [f"{tmp_path}/mine/a.cfg"] * 2  # this file's stage and variable: its own


def test_extends_chain_and_inherited_values_of_dropped_models(tmp_path):
    base(tmp_path)
    write(tmp_path / "recipe_b.yaml", "# b\nextends: recipe.yaml\nexp: b\nvars: {w: {a: 1, lstm: 2}}\n")
    write(
        tmp_path / "recipe_c.yaml",
        "# c\nextends: recipe_b.yaml\nexp: c\nmodels: [lstm]\nstages: [{name: x, per_model: true, run: 'echo {w}'}]\n",
    )
    c = load_recipe(tmp_path / "recipe_c.yaml")
    assert c.model_vars["w"] == {"lstm": "2"} and [j.argv for j in quiet(c).jobs()][-1] == ["echo", "2"]


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"r.yaml": "extends: nope.yaml\n"}, r"r.yaml: extends: nope.yaml not found"),
        ({"r.yaml": "extends: s.yaml\n", "s.yaml": "extends: r.yaml\n"}, "extends itself"),
        ({"r.yaml": "extends: recipe.yaml\nstages: [{name: zzz, remove: true}]\n"}, "remove: the base has no such"),
        ({"r.yaml": "extends: recipe.yaml\nstages: [{name: n, after: zzz, run: x}]\n"}, "after: no stage 'zzz'"),
        ({"r.yaml": "extends: recipe.yaml\nstages: [{name: n, after: prep, before: prep, run: x}]\n"}, "not both"),
        ({"r.yaml": "extends: recipe.yaml\nstages: [{name: train, after: prep, run: x}]\n"}, "replaces the base's"),
        ({"r.yaml": "name: r\nstages: [{name: n, after: a, run: x}]\n"}, "only in a recipe that extends another"),
        ({"r.yaml": "extends: recipe.yaml\nmodels: [b]\n"}, "r.yaml: vars: .* no value for model"),
        ({"r.yaml": "extends: recipe.yaml\nvars: {x: '{y}', y: '{x}'}\n"}, "x uses itself"),
        ({"r.yaml": "extends: recipe.yaml\nvars: {x: '{nope}'}\n"}, "vars: x uses undefined variable"),
        ({"r.yaml": "extends: recipe.yaml\nsets: [a]\n"}, "both as a model and as a set"),
        ({"r.yaml": "extends: recipe.yaml\nstages: [{name: n, per_model: true, run: '{manifest}'}]\n"}, "not per_set"),
        ({"r.yaml": "extends: recipe.yaml\nstages: [{name: n, per_set: true, run: '{w}'}]\n"}, "not per_model"),
        ({"r.yaml": "extends: recipe.yaml\nstages: [{name: n, run: 'echo {set}'}]\n"}, "uses {set} but is not per_set"),
        ({"r.yaml": "extends: recipe.yaml\nsets: []\n"}, "'decode' is per_set but the recipe lists no sets"),
    ],
)
def test_bad_variants_name_the_file_and_key(tmp_path, files, match):
    text = base(tmp_path).read_text().replace("  beam:", "  w: {a: 1, lstm: 2}\n  beam:")
    (tmp_path / "recipe.yaml").write_text(text)
    for name, text in files.items():
        write(tmp_path / name, "# header\n" + text)
    with pytest.raises(UserError, match=match) as err:
        load_recipe(tmp_path / "r.yaml")
    assert "\n" not in str(err.value)


def test_the_synth_and_fsdd_recipes_expand_as_before():
    """The per-model recipes without sets keep their labels and commands."""
    root = Path(__file__).resolve().parents[1]
    runner = quiet(load_recipe(root / "recipes/synth/recipe.yaml"))
    assert labels(runner) == [
        "prep", "tokenizer", "stats", "train_lm", "train[res_indrnn]", "train[irnn]", "train[lstm]",
        "decode_lm[res_indrnn]", "decode_lm[irnn]", "decode_lm[lstm]", "report",
    ]  # fmt: skip
    decode = next(j for j in runner.jobs() if j.label == "decode_lm[lstm]")
    assert decode.argv[:6] == ["recur", "--threads", "1", "decode", "--model", "exp/synth/lstm"]
    fsdd = quiet(load_recipe(root / "recipes/fsdd/recipe.yaml"))
    assert [j.label for j in fsdd.jobs()][-4:] == ["decode_lexicon[res_indrnn]", "decode_lexicon[irnn]",
                                                 "decode_lexicon[lstm]", "report"]  # fmt: skip
