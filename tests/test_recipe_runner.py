"""`recur run`: stage order, stamps, redo on change, failure reporting, resume after kill -9."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from toolkit.cli.main import main
from toolkit.errors import UserError
from toolkit.recipe import RecipeRunner, StageFailed, load_recipe

PY = sys.executable

# a fake trainer: on its first attempt it leaves a checkpoint and kills itself with SIGKILL;
# asked to resume, it checks the checkpoint and finishes
TRAINER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    work = Path(sys.argv[1]); cfg = Path(sys.argv[2]).read_text()
    ckpt = work / "checkpoints" / "last.ckpt"
    if "--ckpt_path" in sys.argv:
        assert sys.argv[sys.argv.index("--ckpt_path") + 1] == "last" and ckpt.read_text() == "step 5"
        (work / "result.txt").write_text("resumed at " + ckpt.read_text() + " with " + cfg)
    else:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        ckpt.write_text("step 5")
        if "die" in cfg:
            os.kill(os.getpid(), signal.SIGKILL)
        (work / "result.txt").write_text("fresh with " + cfg)
    """
)


def write_recipe(tmp_path: Path, extra_stage: str = "") -> Path:
    (tmp_path / "trainer.py").write_text(TRAINER)
    for model in ("a", "lstm"):
        (tmp_path / f"{model}.cfg").write_text(f"config {model}")
    (tmp_path / "log.py").write_text("import sys\nopen(sys.argv[1], 'a').write(' '.join(sys.argv[2:]) + '\\n')\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        textwrap.dedent(
            f"""
            # tiny test recipe
            name: tiny
            exp: {tmp_path}/exp
            models: [a, lstm]
            vars: {{py: {PY}}}
            stages:
              - name: prep
                run: "{{py}} {tmp_path}/log.py {tmp_path}/calls.txt prep"
              - name: train
                per_model: true
                run: "{{py}} {tmp_path}/trainer.py {{exp}}/{{model}} {{recipe_dir}}/{{model}}.cfg"
                workdir: "{{exp}}/{{model}}"
              - name: report
                run: "{{py}} {tmp_path}/log.py {tmp_path}/calls.txt report devices={{devices}}"
            {extra_stage}
            """
        )
    )
    return recipe


def calls(tmp_path: Path) -> list[str]:
    f = tmp_path / "calls.txt"
    return f.read_text().splitlines() if f.exists() else []


def test_runs_in_order_then_skips_then_redoes_what_changed(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path))
    runner = RecipeRunner(recipe, devices=2, echo=lambda s: None)
    first = runner.run()
    assert [label for label, _ in first] == ["prep", "train[a]", "train[lstm]", "report"]
    assert calls(tmp_path) == ["prep", "report devices=2"]
    assert (tmp_path / "exp/a/result.txt").read_text() == "fresh with config a"

    assert all(state == "skipped" for _, state in RecipeRunner(recipe, devices=2, echo=lambda s: None).run())
    # a changed config redoes that model's training only; the old run is kept aside
    (tmp_path / "a.cfg").write_text("config a v2")
    again = dict(RecipeRunner(recipe, devices=2, echo=lambda s: None).run())
    # ... and what depends on it: the report reads every model's results
    assert again == {"prep": "skipped", "train[a]": "done", "train[lstm]": "skipped", "report": "done"}
    assert (tmp_path / "exp/a/result.txt").read_text() == "fresh with config a v2"
    assert len(list((tmp_path / "exp").glob("a.stale-*"))) == 1
    # a changed command line (--devices) redoes the stage that uses it
    assert dict(RecipeRunner(recipe, devices=1, echo=lambda s: None).run())["report"] == "done"


def test_downstream_stages_follow_their_model_and_outputs_are_not_inputs(tmp_path):
    extra = f"""  - name: stats
                run: "{{py}} {tmp_path}/log.py {{exp}}/stats.json stats --out {{exp}}/stats.json"
              - name: decode
                per_model: true
                run: "{{py}} {tmp_path}/log.py {tmp_path}/calls.txt decode {{model}}"
            """
    recipe = load_recipe(write_recipe(tmp_path, extra_stage=extra))
    quiet = {"echo": lambda s: None}
    RecipeRunner(recipe, **quiet).run()
    # a .json named after --out is the stage's output: writing it does not make the stage stale
    assert all(done for _, done in RecipeRunner(recipe, **quiet).states())
    (tmp_path / "lstm.cfg").write_text("config lstm v2")
    states = {job.label: done for job, done in RecipeRunner(recipe, **quiet).states()}
    # stats and report are shared stages after the training: they depend on every model
    assert not any(states[k] for k in ("train[lstm]", "decode[lstm]", "report", "stats"))
    assert states["train[a]"] and states["decode[a]"]
    # the training alone in one invocation, then the rest in another: decode[lstm] still knows
    RecipeRunner(recipe, **quiet).run("train", "train")
    again = dict(RecipeRunner(recipe, **quiet).run("stats"))
    assert again == {"stats": "done", "decode[a]": "skipped", "decode[lstm]": "done"}
    assert calls(tmp_path).count("decode lstm") == 2 and calls(tmp_path).count("decode a") == 1


def test_a_stamp_that_does_not_record_its_upstream_is_redone(tmp_path):
    """Stamps of older versions lack "upstream": after a retraining their decode must not be kept."""
    import json

    extra = f"""  - name: decode
                per_model: true
                run: "{{py}} {tmp_path}/log.py {tmp_path}/calls.txt decode {{model}}"
            """
    recipe = load_recipe(write_recipe(tmp_path, extra_stage=extra))
    quiet = {"echo": lambda s: None}
    RecipeRunner(recipe, **quiet).run()
    stamp = tmp_path / "exp/.stamps"
    files = {f.name: f for f in stamp.glob("*.json")}
    decode_a = next(f for name, f in files.items() if "decode" in name and name.endswith("a.json"))
    data = json.loads(decode_a.read_text())
    del data["upstream"]
    decode_a.write_text(json.dumps(data))
    states = {job.label: done for job, done in RecipeRunner(recipe, **quiet).states()}
    assert not states["decode[a]"] and states["decode[lstm]"] and states["train[a]"]


def test_stage_selection_and_models(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path))
    runner = RecipeRunner(recipe, models=["lstm"], echo=lambda s: None)
    assert [j.label for j in runner.jobs("train", "train")] == ["train[lstm]"]
    assert [j.label for j in runner.jobs("train")] == ["train[lstm]", "report"]
    with pytest.raises(UserError, match="not in"):
        RecipeRunner(recipe, models=["gru"])
    with pytest.raises(UserError, match="no stage 'decode'"):
        runner.jobs("decode")


def test_per_model_variables_and_their_overrides(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        textwrap.dedent(
            f"""
            name: tiny
            exp: {tmp_path}/exp
            models: [a, b, lstm]
            vars: {{w: {{default: 2.0, lstm: 0.5}}, beam: 8, py: {PY}}}
            stages:
              - name: decode
                per_model: true
                run: "{{py}} {tmp_path}/log.py {tmp_path}/calls.txt {{model}} w={{w}} beam={{beam}}"
              - name: report
                run: "{{py}} {tmp_path}/log.py {tmp_path}/calls.txt report beam={{beam}}"
            """
        )
    )
    (tmp_path / "log.py").write_text("import sys\nopen(sys.argv[1], 'a').write(' '.join(sys.argv[2:]) + '\\n')\n")
    spec = load_recipe(recipe)

    def argv(**overrides):
        jobs = RecipeRunner(spec, overrides=overrides, echo=lambda s: None).jobs()
        return [" ".join(j.argv[3:]) for j in jobs]

    assert argv() == ["a w=2.0 beam=8", "b w=2.0 beam=8", "lstm w=0.5 beam=8", "report beam=8"]
    assert argv(**{"w.a": "1"}) == ["a w=1 beam=8", "b w=2.0 beam=8", "lstm w=0.5 beam=8", "report beam=8"]
    assert argv(w="3")[:3] == ["a w=3 beam=8", "b w=3 beam=8", "lstm w=3 beam=8"]
    # a shared variable used only by per-model stages may be set per model
    recipe.write_text(recipe.read_text().replace("report beam={beam}", "report"))
    spec = load_recipe(recipe)
    assert argv(**{"beam.b": "500"})[:3] == ["a w=2.0 beam=8", "b w=2.0 beam=500", "lstm w=0.5 beam=8"]
    # a changed per-model value redoes that model's stage (and the shared stage after it), not the others
    RecipeRunner(spec, echo=lambda s: None).run()
    rerun = dict(RecipeRunner(spec, overrides={"w.b": "9"}, echo=lambda s: None).run())
    assert rerun == {"decode[a]": "skipped", "decode[b]": "done", "decode[lstm]": "skipped", "report": "done"}
    assert calls(tmp_path)[-2:] == ["b w=9 beam=8", "report"]
    for bad, match in [({"x": "1"}, "not a variable"), ({"w.gru": "1"}, "not a model")]:
        with pytest.raises(UserError, match=match):
            RecipeRunner(spec, overrides=bad)


def test_per_model_variable_in_a_shared_stage_is_refused(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("name: x\nmodels: [a]\nvars: {w: {a: 1}}\nstages: [{name: s, run: 'echo {w}'}]")
    with pytest.raises(UserError, match="not per_model but uses per-model"):
        load_recipe(path)
    path.write_text("name: x\nmodels: [a]\nvars: {w: 1}\nstages: [{name: s, run: 'echo {w}'}]")
    with pytest.raises(UserError, match="used by shared stage"):
        RecipeRunner(load_recipe(path), overrides={"w.a": "2"})


def test_kill_9_during_training_then_rerun_resumes(tmp_path):
    recipe_path = write_recipe(tmp_path)
    (tmp_path / "a.cfg").write_text("config a die")
    recipe = load_recipe(recipe_path)
    with pytest.raises(StageFailed) as failure:
        RecipeRunner(recipe, echo=lambda s: None).run()
    assert failure.value.label == "train[a]" and failure.value.code == -9
    assert "killed" in str(failure.value) and str(failure.value.log).endswith("train-a.log")
    # the rerun resumes the interrupted training from its checkpoint and goes on with the rest
    results = dict(RecipeRunner(recipe, echo=lambda s: None).run())
    assert results == {"prep": "skipped", "train[a]": "done", "train[lstm]": "done", "report": "done"}
    assert (tmp_path / "exp/a/result.txt").read_text() == "resumed at step 5 with config a die"


def test_failure_is_one_line_with_cause_and_log(tmp_path, capsys):
    recipe = write_recipe(
        tmp_path,
        extra_stage=f"""  - name: broken
                run: "{PY} -c \\"import sys; print('working'); sys.exit('ValueError: bad thing in x.yaml')\\""
            """,
    )
    assert main(["run", str(recipe)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "stage broken failed (exit 1): ValueError: bad thing in x.yaml" in err[0]
    log = err[0].split("full log: ")[1]
    assert "working" in Path(log).read_text()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: x\nstages: [{name: a, run: 'echo {nope}'}]", "undefined variable"),
        ("name: x\ncolour: red\nstages: []", "unknown key"),
        ("name: x\nstages: [{name: a, run: echo, per_model: true}]", "lists no models"),
        ("name: x\nstages: [{name: a, run: 'echo {model}'}]", "not per_model"),
        ("stages: []", "missing required key 'name'"),
        ("name: [unclosed", "not valid YAML"),
        ("name: x\nmodels: [a, b]\nvars: {w: {a: 1}}\nstages: []", "no value for model"),
        ("name: x\nmodels: [a]\nvars: {w: {c: 1, default: 2}}\nstages: []", "not among the models"),
    ],
)
def test_bad_recipes_name_the_problem(tmp_path, text, match):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=match):
        load_recipe(path)


def test_missing_recipe_is_a_clear_error(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "recipe not found" in capsys.readouterr().err
