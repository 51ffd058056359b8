"""`recur run`: stage order, stamps, redo on change, failure reporting, resume after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from unittest.mock import ANY

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


def test_failure_that_suggests_an_option_says_how_to_use_it(tmp_path, capsys):
    """A stage's error that suggests an option (`or use --download`) recur run cannot pass says to run the
    stage by hand with it, or which of the stage's values --set changes."""
    (tmp_path / "prep.py").write_text(
        "import sys\nsys.exit('recur prep: error: corpus not found at ' + sys.argv[2] + ': or use --download')\n"
    )
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"# test\nname: t\nexp: {tmp_path}/exp\nvars: {{src: /nope}}\n"
        f"stages: [{{name: prep, run: '{PY} {tmp_path}/prep.py --src {{src}}'}}]\n"
    )
    assert main(["run", str(recipe)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "corpus not found at /nope: or use --download [--download: not an option of recur run" in err[0]
    assert f"run the stage by hand: {PY} {tmp_path}/prep.py --src /nope --download;" in err[0]
    assert "change its values with --set (src)]" in err[0]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: x\nstages: [{name: a, run: 'echo {nope}'}]", "undefined variable"),
        ("name: x\ncolour: red\nstages: []", "unknown key"),
        ("name: x\nstages: [{name: a, run: echo, per_model: true}]", "lists no models"),
        ("name: x\nstages: [{name: a, run: 'echo {model}'}]", "not per_model"),
        ("stages: []", "missing required key 'name'"),
        ("name: [unclosed", r"recipe.yaml:1:16: not valid YAML: expected"),  # the line and column named
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


# --- a synth-like miniature: every stage writes files, the training stages keep checkpoints ---------------

# one tool for every non-training stage: it writes its output and logs its call; a stage whose label is in
# die.txt kills itself with SIGKILL after writing a part of its output (kill -9 mid-stage)
TOOL = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    root = Path(__file__).parent
    label, out = sys.argv[1], Path(sys.argv[2])
    with open(root / "calls.txt", "a") as f:
        f.write(label + "\\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("partial")
    die = root / "die.txt"
    if die.exists() and die.read_text() == label:
        die.unlink()
        os.kill(os.getpid(), signal.SIGKILL)
    out.write_text(label + " " + " ".join(sys.argv[3:]))
    """
)

# a trainer: writes a checkpoint, then (when told so by die.txt) is killed or waits to be interrupted;
# asked to resume (--ckpt_path last) it requires the checkpoint it left
TRAIN = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    root = Path(__file__).parent
    label, work = sys.argv[1], Path(sys.argv[2])
    with open(root / "calls.txt", "a") as f:
        f.write(label + (" resumed" if "--ckpt_path" in sys.argv else "") + "\\n")
    ckpt = work / "checkpoints" / "last.ckpt"
    if "--ckpt_path" in sys.argv:
        assert ckpt.read_text() == "step 5", "resumed without the checkpoint"
        how = "resumed"
    else:
        assert not work.exists() or not any(work.iterdir()), "a fresh run found an old one"
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        ckpt.write_text("step 5")
        how = "fresh"
        die = root / "die.txt"
        if die.exists() and die.read_text() == label:
            die.unlink()
            os.kill(os.getpid(), signal.SIGKILL)
        if die.exists() and die.read_text() == label + " wait":
            die.unlink()
            (root / "waiting").write_text("")
            time.sleep(120)
    configs = [Path(p).read_text() for p in sys.argv[3:] if p.endswith(".cfg")]
    (work / "result.txt").write_text(how + " " + " ".join(configs))
    """
)

SYNTH = """
# a synth-like miniature: data, tokenizer, CMVN stats, an LM and per-model training, decoding, report
name: mini
exp: {root}/exp
models: [a, lstm]
vars: {{py: {py}, beam: 8}}
stages:
  - name: prep
    run: "{{py}} {root}/tool.py prep {{exp}}/data/train.jsonl --src {root}/corpus.txt"
    inputs: ["{root}/corpus.txt"]
  - name: tokenizer
    run: "{{py}} {root}/tool.py tokenizer {{exp}}/tokenizer/tokenizer.json {{exp}}/data/train.jsonl"
  - name: stats
    run: "{{py}} {root}/tool.py stats {{exp}}/cmvn.json --out {{exp}}/cmvn.json"
  - name: train_lm
    workdir: "{{exp}}/lm"
    run: "{{py}} {root}/train.py train_lm {{exp}}/lm {{recipe_dir}}/lm.cfg {{exp}}/tokenizer/tokenizer.json"
  - name: train
    per_model: true
    workdir: "{{exp}}/{{model}}"
    run: >-
      {{py}} {root}/train.py train[{{model}}] {{exp}}/{{model}} {{recipe_dir}}/base.cfg {{recipe_dir}}/{{model}}.cfg
      --cmvn {{exp}}/cmvn.json --tokenizer {{exp}}/tokenizer/tokenizer.json
  - name: decode
    per_model: true
    run: "{{py}} {root}/tool.py decode[{{model}}] {{exp}}/{{model}}/decode.json --lm {{exp}}/lm --beam {{beam}}"
  - name: report
    run: "{{py}} {root}/tool.py report {{exp}}/RESULTS.json {{exp}}/a/decode.json {{exp}}/lstm/decode.json"
"""
MINI_LABELS = [
    "prep",
    "tokenizer",
    "stats",
    "train_lm",
    "train[a]",
    "train[lstm]",
    "decode[a]",
    "decode[lstm]",
    "report",
]


def mini_recipe(root: Path) -> Path:
    (root / "tool.py").write_text(TOOL)
    (root / "train.py").write_text(TRAIN)
    (root / "corpus.txt").write_text("some speech")
    for name in ("lm", "base", "a", "lstm"):
        (root / f"{name}.cfg").write_text(f"config {name}")
    path = root / "recipe.yaml"
    path.write_text(SYNTH.format(root=root, py=PY))
    return path


def mini_calls(root: Path) -> list[str]:
    return calls(root)


def run_mini(root: Path, **kwargs) -> dict[str, str]:
    return dict(RecipeRunner(load_recipe(root / "recipe.yaml"), echo=lambda s: None, **kwargs).run())


def todo(root: Path, **kwargs) -> dict[str, str]:
    """The stages `recur run --list` would show as to do, with the reason it gives."""
    runner = RecipeRunner(load_recipe(root / "recipe.yaml"), echo=lambda s: None, **kwargs)
    return {job.label: why for job, why in runner.status() if why}


def no_stale(root: Path) -> None:
    assert not list((root / "exp").rglob("*.stale-*")), "a finished or resumable run was moved aside"


def test_a_complete_run_then_a_rerun_runs_nothing(tmp_path, capsys):
    path = mini_recipe(tmp_path)
    first = run_mini(tmp_path)
    assert list(first) == MINI_LABELS and set(first.values()) == {"done"}
    # the second run (a new plan, now that cmvn.json, decode.json, ... exist) finds everything done
    assert set(run_mini(tmp_path).values()) == {"skipped"}
    assert todo(tmp_path) == {}
    capsys.readouterr()
    assert main(["run", str(path)]) == 0
    assert "0 stage(s) run, 9 up to date" in capsys.readouterr().out
    assert main(["run", str(path), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 9 and all(line.split()[1] == "done" for line in lines), lines
    assert mini_calls(tmp_path) == MINI_LABELS  # each stage ran once
    no_stale(tmp_path)


@pytest.mark.parametrize("stage", MINI_LABELS)
def test_killed_in_any_stage_the_rerun_continues_where_it_stopped(tmp_path, stage):
    mini_recipe(tmp_path)
    (tmp_path / "die.txt").write_text(stage)
    with pytest.raises(StageFailed) as failure:
        run_mini(tmp_path)
    assert failure.value.label == stage and failure.value.code == -9
    killed = MINI_LABELS.index(stage)
    why = todo(tmp_path)
    assert list(why) == MINI_LABELS[killed:]
    assert "interrupted" in why[stage] and all(why[s] == "never run" for s in MINI_LABELS[killed + 1 :])
    again = run_mini(tmp_path)
    assert again == {s: ("skipped" if i < killed else "done") for i, s in enumerate(MINI_LABELS)}
    resumed = stage.startswith("train")
    assert (
        mini_calls(tmp_path)
        == MINI_LABELS[: killed + 1] + [stage + (" resumed" if resumed else "")] + MINI_LABELS[killed + 1 :]
    )
    if resumed:
        work = tmp_path / "exp" / ("lm" if stage == "train_lm" else stage[6:-1])
        assert (work / "result.txt").read_text().startswith("resumed")
    no_stale(tmp_path)
    assert set(run_mini(tmp_path).values()) == {"skipped"}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_recur_run_interrupted_during_training_resumes_on_the_rerun(tmp_path, sig, capsys):
    """The whole `recur run` (runner and trainer, one process group) interrupted mid-training."""
    path = mini_recipe(tmp_path)
    (tmp_path / "die.txt").write_text("train[lstm] wait")
    proc = subprocess.Popen(
        [PY, "-m", "toolkit.cli.main", "run", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        # as from a terminal: a job started with `&` inherits SIGINT ignored, and Python then keeps it so
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 60
    while not (tmp_path / "waiting").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGINT else -9), err.decode()
    if sig == signal.SIGINT:  # and it says how to go on
        assert err.decode().splitlines()[-1].startswith("recur run: interrupted; run the same command again")
    capsys.readouterr()
    assert main(["run", str(path), "--list"]) == 0
    listed = capsys.readouterr().out
    assert "train[lstm]" in listed and "interrupted" in listed.split("train[lstm]")[1].splitlines()[0]
    assert main(["run", str(path)]) == 0
    assert "4 stage(s) run, 5 up to date" in capsys.readouterr().out  # train[lstm], decode x2, report
    assert (tmp_path / "exp/lstm/result.txt").read_text() == "resumed config base config lstm"
    assert (tmp_path / "exp/a/result.txt").read_text() == "fresh config base config a"
    no_stale(tmp_path)
    assert main(["run", str(path)]) == 0
    assert "0 stage(s) run" in capsys.readouterr().out


def test_only_a_real_change_redoes_a_stage_and_what_depends_on_it(tmp_path):
    mini_recipe(tmp_path)
    run_mini(tmp_path)
    # a model's config: its training, its decode and the report
    (tmp_path / "lstm.cfg").write_text("config lstm v2")
    why = todo(tmp_path)
    assert set(why) == {"train[lstm]", "decode[lstm]", "report"}
    assert why["train[lstm]"] == f"config {tmp_path}/lstm.cfg changed"
    assert why["decode[lstm]"] == "upstream train[lstm] changed"
    assert why["report"] == "upstream train[lstm] changed"
    assert [s for s, state in run_mini(tmp_path).items() if state == "done"] == list(why)
    assert (tmp_path / "exp/lstm/result.txt").read_text() == "fresh config base config lstm v2"
    assert len(list((tmp_path / "exp").glob("lstm.stale-*"))) == 1  # the old run kept aside, never overwritten
    assert todo(tmp_path) == {}
    # a declared input: everything after it
    (tmp_path / "corpus.txt").write_text("other speech")
    why = todo(tmp_path)
    assert why["prep"] == f"input {tmp_path}/corpus.txt changed" and list(why) == MINI_LABELS
    assert why["tokenizer"] == "upstream prep changed"
    run_mini(tmp_path)
    # a --set variable: the stages whose command uses it
    why = todo(tmp_path, overrides={"beam": "16"})
    assert set(why) == {"decode[a]", "decode[lstm]", "report"}
    assert why["decode[a]"] == "command changed: --beam 8 -> --beam 16"
    assert why["report"] == "upstream decode[a], decode[lstm] changed"
    # --models selects what runs, not what the shared stages depend on: nothing to do for a subset
    assert todo(tmp_path, models=["lstm"]) == {}
    assert set(run_mini(tmp_path, models=["lstm"]).values()) == {"skipped"}


def test_an_experiment_folder_named_differently_is_the_same_experiment(tmp_path, monkeypatch):
    """The recipe and the experiment folder given as absolute or relative paths: the same stamps hold."""
    mini_recipe(tmp_path)
    path = tmp_path / "recipe.yaml"
    path.write_text(path.read_text().replace(f"exp: {tmp_path}/exp", "exp: exp"))
    monkeypatch.chdir(tmp_path)
    assert set(dict(RecipeRunner(load_recipe("recipe.yaml"), echo=lambda s: None).run()).values()) == {"done"}
    again = RecipeRunner(load_recipe(path), exp=str(tmp_path / "exp"), echo=lambda s: None)
    assert [why for _, why in again.status()] == [None] * 9


def test_stamps_of_the_previous_format_still_hold(tmp_path):
    """An experiment stamped by the previous recur (key over the command as written and the config files
    that existed when it planned) is not redone: neither one whose stamps were written by a first run
    (before cmvn.json existed) nor one whose stamps a later run rewrote (with it)."""
    import hashlib
    import json

    from toolkit.recipe.runner import CONFIG_SUFFIXES, OUTPUT_FLAGS, fingerprint

    mini_recipe(tmp_path)
    run_mini(tmp_path)
    runner = RecipeRunner(load_recipe(tmp_path / "recipe.yaml"), echo=lambda s: None)

    def old_key(job, made: bool) -> str:  # recur's key before stamps had a version
        outputs = {b for a, b in zip(job.argv, job.argv[1:], strict=False) if a in OUTPUT_FLAGS}
        exp = str(tmp_path / "exp")
        files = {
            a: fingerprint(Path(a))
            for a in job.argv
            if a not in outputs and Path(a).suffix in CONFIG_SUFFIXES and Path(a).is_file()
            if made or not a.startswith(exp)
        }
        blob = {"argv": job.argv, "files": files, "inputs": {str(p): fingerprint(p) for p in job.inputs}}
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()

    for made in (False, True):
        plan = runner.plan()
        jobs = {p.job.label: p.job for p in plan}
        for p in plan:
            needs = [[label, old_key(jobs[label], made)] for label in p.needs]
            upstream = hashlib.sha256(json.dumps(needs).encode()).hexdigest()
            stamp = {"key": old_key(p.job, made), "upstream": upstream, "argv": p.job.argv, "finished": 0}
            (tmp_path / "exp/.stamps" / f"{p.job.slug}.json").write_text(json.dumps(stamp))
        assert todo(tmp_path) == {}
        assert set(run_mini(tmp_path).values()) == {"skipped"}
    # ... and a real change still redoes what it touches
    (tmp_path / "a.cfg").write_text("config a v2")
    assert todo(tmp_path) == {s: ANY for s in ("train[a]", "decode[a]", "report")}


def test_a_training_moved_aside_twice_within_a_second_keeps_both(tmp_path, monkeypatch):
    mini_recipe(tmp_path)
    run_mini(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20250101-000000")  # the same second, every time
    for version in ("v2", "v3"):
        (tmp_path / "lm.cfg").write_text(f"config lm {version}")
        assert run_mini(tmp_path)["train_lm"] == "done"
    assert sorted(p.name for p in (tmp_path / "exp").glob("lm.stale-*")) == [
        "lm.stale-20250101-000000", "lm.stale-20250101-000000-2"
    ]  # fmt: skip
