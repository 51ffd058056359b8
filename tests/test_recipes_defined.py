"""Every recipe under recipes/ is well defined, whether or not its corpus is on this machine: it loads, every
file it names exists, every `recur` command line parses, and every training command's LightningCLI config
resolves (``--print_config``: an unknown key anywhere fails) and builds its model, at the parameter budget it
claims. Corpus-less recipes also run end to end on miniatures in their own layout (WikiText-2, TIMIT, the
LJSpeech phones, the folder recipe on a few synthetic files)."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
from pathlib import Path

import pytest
import yaml

from toolkit.cli.main import build_parser, main
from toolkit.data.tokenizer import train_tokenizer
from toolkit.recipe import RecipeRunner, load_recipe
from toolkit.recipe.runner import Job
from toolkit.train.cli import fit

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*/recipe*.yaml"))
IDS = [str(p.relative_to(ROOT / "recipes")) for p in RECIPES]


def jobs(path: Path, tmp_path: Path) -> list[Job]:
    runner = RecipeRunner(load_recipe(path), exp=str(tmp_path / "exp"), echo=lambda s: None)
    return runner.jobs()


def test_the_new_recipes_are_found():
    names = {p.parent.name for p in RECIPES}
    assert {"librispeech", "timit", "wikitext2", "wikitext103", "ljspeech", "ptb_word"} <= names
    for variant in ("librispeech/recipe_960", "adding/recipe_full", "seq_mnist/recipe_full", "ptb_char/recipe_full"):
        assert (ROOT / f"recipes/{variant}.yaml") in RECIPES


def test_one_naming_convention_and_no_copies():
    """recipe.yaml is the default, recipe_full.yaml extends it for the paper size, recipe_<what>.yaml any other
    variant; every config in a recipe folder is named by one of its recipes; the variants of a corpus write
    to experiment folders of their own; adding and seq_mnist hold one config per model, no copies."""
    for folder in sorted({p.parent for p in RECIPES}):
        recipes = sorted(folder.glob("recipe*.yaml"))
        assert folder / "recipe.yaml" in recipes, folder
        full = folder / "recipe_full.yaml"
        if full.exists():
            assert yaml.safe_load(full.read_text())["extends"] == "recipe.yaml", full
        loaded = [load_recipe(p) for p in recipes]
        assert len({r.exp for r in loaded}) == len(loaded), f"{folder}: two recipes share an experiment folder"
        named = set()
        for recipe in loaded:
            for job in RecipeRunner(recipe, echo=lambda s: None).jobs():
                named |= {Path(w).name for w in job.argv if Path(w).parent == folder}
        configs = {p.name for p in folder.glob("*.yaml")} - {p.name for p in recipes}
        assert configs <= named, f"{folder}: config(s) no recipe names: {sorted(configs - named)}"
    for corpus in ("adding", "seq_mnist"):
        files = [p for p in (ROOT / "recipes" / corpus).iterdir() if not p.name.startswith(".")]
        assert len(files) <= 18, sorted(p.name for p in files)
    adding = load_recipe(ROOT / "recipes/adding/recipe_full.yaml")
    assert {p.stem for p in (ROOT / "recipes/adding").glob("*.yaml")} == {
        "base", "recipe", "recipe_full", "recipe_long", "stop_solved", *adding.models
    }  # fmt: skip
    assert len(RecipeRunner(adding, echo=lambda s: None).jobs(stop="train")) == 12 * 4


@pytest.mark.parametrize("path", RECIPES, ids=IDS)
def test_recipe_loads_names_existing_files_and_parses(path, tmp_path):
    assert path.read_text().startswith("#"), "a recipe starts with a comment header (data, sizes, expected time)"
    recipe_dir = str(path.parent)
    parser = build_parser()
    for job in jobs(path, tmp_path):
        argv = job.argv
        for i, word in enumerate(argv):
            if word.startswith(recipe_dir) or (i and argv[i - 1] == "--config"):
                assert Path(word).is_file(), f"{job.label}: {word} does not exist"
                if Path(word).suffix == ".yaml":  # a config: it parses, and is a mapping of sections
                    assert isinstance(yaml.safe_load(Path(word).read_text()), dict), f"{job.label}: {word}"
        if argv[0] == "recur":
            try:  # every option of every stage is one the command knows (fit's are checked below)
                with contextlib.redirect_stderr(io.StringIO()) as err:
                    parser.parse_args(argv[1:])
            except SystemExit:
                pytest.fail(f"{job.label}: {err.getvalue().strip().splitlines()[-1]}")


FIT_RECIPES = [p for p in RECIPES if " fit " in p.read_text()]
NEW = {"librispeech", "timit", "wikitext2", "wikitext103"}  # each compares models of one encoder budget


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory) -> str:
    return str(train_tokenizer("char", ["a tiny vocabulary"]).save(tmp_path_factory.mktemp("tok")).parent)


def resolved_config(job: Job) -> dict:
    """What LightningCLI makes of the stage's exact `recur fit` arguments (nothing trained, no file read)."""
    args = job.argv[job.argv.index("fit") + 1 :] + ["--print_config"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stop:
        fit(args)
    assert stop.value.code == 0, f"{job.label}: {err.getvalue().strip()[-1500:]}"
    return yaml.safe_load(out.getvalue())


def build(section: dict, tokenizer: str):
    module, _, name = section["class_path"].rpartition(".")
    init = dict(section.get("init_args") or {})
    if "tokenizer" in init:
        init["tokenizer"] = tokenizer  # the recipe's own is written by an earlier stage
    if init.get("cmvn"):
        init["cmvn"] = None
    return getattr(importlib.import_module(module), name)(**init)


@pytest.mark.parametrize("path", FIT_RECIPES, ids=[str(p.relative_to(ROOT / "recipes")) for p in FIT_RECIPES])
def test_training_configs_resolve_and_build_at_their_budget(path, tmp_path, tiny_tokenizer):
    budgets = {}
    for job in jobs(path, tmp_path):
        if "fit" not in job.argv:
            continue
        cfg = resolved_config(job)
        assert cfg["exp_dir"] == str(job.workdir)
        model = build(cfg["model"], tiny_tokenizer)
        budget = cfg["model"]["init_args"].get("param_budget")
        if budget:
            n = sum(p.numel() for p in model.encoder.parameters())
            assert abs(n - budget) <= 0.02 * budget, f"{job.label}: encoder has {n:,} parameters, budget {budget:,}"
            budgets[job.model] = budget
    if path.parent.name in NEW:
        assert set(budgets) == set(load_recipe(path).models) and len(set(budgets.values())) == 1, budgets


def test_ngram_reads_manifest_transcripts(tmp_path):
    manifest = tmp_path / "train.jsonl"
    lines = [{"id": f"u{i}", "audio_filepath": f"u{i}.flac", "duration": 1.0, "text": text, "sampling_rate": 16000}
             for i, text in enumerate(["HELLO THERE WORLD", "HELLO WORLD"])]  # fmt: skip
    manifest.write_text("".join(json.dumps(e) + "\n" for e in lines))
    assert main(["ngram", str(manifest), "--out", str(tmp_path / "lm.arpa")]) == 0
    arpa = (tmp_path / "lm.arpa").read_text()
    assert "ngram 1=" in arpa and "\tTHERE" in arpa and "HELLO WORLD" in arpa


def test_ngram_remove_punct_counts_punctuated_words_as_the_plain_ones(tmp_path):
    (tmp_path / "lm.txt").write_text("The jail, then the Jail.\nthe jail\n")
    assert main(["ngram", str(tmp_path / "lm.txt"), "--lowercase", "--remove-punct", "--out", str(tmp_path / "a")]) == 0
    unigrams = [line.split("\t")[1] for line in (tmp_path / "a").read_text().split("\\2-grams:")[0].splitlines()
                if line.count("\t") >= 1 and not line.startswith("ngram")]  # fmt: skip
    assert {"the", "jail", "then"} <= set(unigrams) and not {"jail,", "jail.", "Jail."} & set(unigrams)
    assert main(["ngram", str(tmp_path / "lm.txt"), "--lowercase", "--out", str(tmp_path / "b")]) == 0
    assert "\tjail.\t" in (tmp_path / "b").read_text() or "\tjail.\n" in (tmp_path / "b").read_text()


def test_ngram_eval_prints_the_perplexity_of_held_out_text_normalised_as_the_training_text(tmp_path, capsys):
    from toolkit.decode.ngram import NGramLM

    (tmp_path / "lm.txt").write_text("The cat sat.\nthe cat ran\n\na dog sat\n")
    (tmp_path / "held.txt").write_text("The Cat ran.\nthe bird sat\n")
    capsys.readouterr()
    assert main(["ngram", str(tmp_path / "lm.txt"), "--lowercase", "--remove-punct", "--smoothing", "kn",
                 "--out", str(tmp_path / "lm.arpa"), "--eval", str(tmp_path / "held.txt")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    lm = NGramLM(["the cat sat", "the cat ran", "a dog sat"], order=3, smoothing="kn")
    ppl, words, unknown = lm.perplexity(["the cat ran", "the bird sat"])
    assert "3 sentences" in out and (words, unknown) == (8, 1)
    assert f"perplexity {ppl:.1f} over 8 words (</s> included), 1 <unk>" in out


# a miniature WikiText-2 in its published layout; valid and test hold a word train never has (-> <unk>)
WORDS = "the cat sat on a mat and dog ran to house of red blue green big small".split()


def wikitext_tree(root: Path) -> Path:
    import random

    rng = random.Random(0)
    d = root / "wikitext-2"
    d.mkdir(parents=True)
    for split, n in (("train", 60), ("valid", 12), ("test", 12)):
        lines = [" ", " = Heading = ", " "]
        for _ in range(n):
            words = rng.choices(WORDS, k=rng.randint(4, 12)) + (["zebra"] if split != "train" else [])
            lines.append(" " + " ".join(words) + " . ")
        (d / f"wiki.{split}.tokens").write_text("\n".join(lines) + "\n")
    return root


TINY = """
trainer: {accelerator: cpu, max_epochs: 1, val_check_interval: 0.5, enable_progress_bar: false}
model: {init_args: {param_budget: 60000, embed_size: 8}}
data: {init_args: {batch_size: 4, bptt: 8, eval_batch_size: 2}}
"""


def test_wikitext2_recipe_end_to_end_on_a_miniature(tmp_path, capsys):
    src = wikitext_tree(tmp_path / "corpus")
    (tmp_path / "tiny.yaml").write_text(TINY)
    overrides = [f"src={src}", "precision=32-true", "device=cpu", "max_steps=6"]
    overrides.append(f"fit_args=--config {tmp_path / 'tiny.yaml'}")  # a miniature model and batches
    # two of the three models keep it under a minute (irnn differs from them only in its config, checked above)
    exp = tmp_path / "exp"
    args = ["run", str(ROOT / "recipes/wikitext2/recipe.yaml"), "--exp", str(exp), "--models", "res_indrnn,lstm"]
    assert main(args + [f"--set={kv}" for kv in overrides]) == 0
    assert (exp / "data/train.txt").is_file() and (exp / "tokenizer/tokenizer.json").is_file()
    for model in ("res_indrnn", "lstm"):
        m = json.loads((exp / model / "metrics.json").read_text())
        assert m["train"]["steps"] == 6 and m["config"]["model"]["encoder"] == model
        assert yaml.safe_load((exp / model / "config.yaml").read_text())["trainer"]["precision"] == "32-true"
        assert m["final"]["test_full/ppl"] > 1 and m["final"]["test_full/oov"] > 0  # "zebra" scored as <unk>
        assert (exp / model / "test_scores.tsv").is_file()
    results = (exp / "RESULTS.md").read_text()
    assert "WikiText-2" in results and "lstm" in results
    # a second run finds everything done
    assert main(args + [f"--set={kv}" for kv in overrides]) == 0
    assert capsys.readouterr().out.count("up to date, skipped") == 1 + 1 + 2 + 2 + 1


def test_librispeech_960_data_stages_on_a_miniature(tmp_path):
    """prep of all seven subsets, the merged 960 h manifest, tokenizer, CMVN and the trigram on its transcripts."""
    from audio_fixtures import tone

    from data_prep.librispeech import SUBSETS
    from toolkit.data.manifest import read_manifest
    from toolkit.data.tokenizer import load_tokenizer

    src = tmp_path / "LibriSpeech"
    for n, subset in enumerate(SUBSETS):
        d = src / subset / f"{n + 1}" / "100"
        lines = [f"{n + 1}-100-{u:04d} {subset.upper().replace('-', ' ')} IT'S WORD {u}" for u in range(2)]
        for u in range(2):
            tone(d / f"{n + 1}-100-{u:04d}.flac", 0.3, seed=10 * n + u)
        (d / f"{n + 1}-100.trans.txt").write_text("\n".join(lines) + "\n")
    exp = tmp_path / "exp"
    args = ["run", str(ROOT / "recipes/librispeech/recipe_960.yaml"), "--exp", str(exp), "--stop-stage", "ngram"]
    assert main(args + [f"--set=src={src}", "--set=jobs=1"]) == 0
    train = read_manifest(exp / "data/train-960.jsonl")
    assert len(train) == 6 and {e["speaker"] for e in train} == {"5", "6", "7"}  # the three training subsets
    symbols = set(load_tokenizer(exp / "tokenizer").symbols)
    assert {"T", "'", " "} <= symbols and "t" not in symbols  # the corpus's own uppercase spelling
    arpa = (exp / "lm/trigram.arpa").read_text()
    assert "\tOTHER" in arpa and "\tIT'S" in arpa and "\tDEV" not in arpa  # training transcripts only
    assert (exp / "cmvn.json").is_file()


def test_timit_recipe_end_to_end_on_a_miniature(tmp_path):
    """One model through every stage on a four-speaker TIMIT tree: the 39-phone targets, the phone tokenizer,
    training, greedy decoding scored over phone tokens (the PER), the report."""
    from test_prep_speech import timit_tree

    from toolkit.data.tokenizer import load_tokenizer

    src = timit_tree(tmp_path / "ldc")
    (tmp_path / "tiny.yaml").write_text(
        "trainer: {accelerator: cpu, enable_progress_bar: false}\n"
        "model: {init_args: {param_budget: 29000, num_layers: 2}}\n"
    )
    exp = tmp_path / "exp"
    args = ["run", str(ROOT / "recipes/timit/recipe.yaml"), "--exp", str(exp), "--models", "lstm"]
    sets = [f"--set=src={src}", "--set=max_steps=2", f"--set=fit_args=--config {tmp_path / 'tiny.yaml'}"]
    assert main(args + sets) == 0
    assert set(load_tokenizer(exp / "tokenizer").symbols[3:]) == {"sil", "sh", "ih", "b", "aa"}  # after the specials
    m = json.loads((exp / "lstm/metrics.json").read_text())
    assert m["train"]["steps"] == 2 and {"dev/wer", "test/wer"} <= set(m["final"])
    recogs = (exp / "lstm/decode/test/recogs.txt").read_text()
    assert "ref=sil sh ih sil b aa sil" in recogs
    assert "PER" in (exp / "RESULTS.md").read_text()


def test_ljspeech_phone_recipe_end_to_end_on_a_miniature(tmp_path):
    """Every stage of recipe_phones.yaml on a fake LJSpeech tree: G2P phone manifests, the phone tokenizer,
    training, greedy phone decoding, word decoding through the lexicon with the trigram, and its n-best
    re-ranked by the word LSTM LM."""
    from test_prep_ljspeech import make_corpus

    from toolkit.data.tokenizer import load_tokenizer

    src = make_corpus(tmp_path / "LJSpeech-1.1", n=12)
    (tmp_path / "tiny.yaml").write_text(
        "trainer: {accelerator: cpu, enable_progress_bar: false, check_val_every_n_epoch: 1}\n"
        "model: {init_args: {param_budget: 20000, num_layers: 2, specaugment: null}}\n"
        "data: {init_args: {speed_perturb: null, max_seconds: 4.0}}\n"
    )
    exp = tmp_path / "exp"
    args = ["run", str(ROOT / "recipes/ljspeech/recipe_phones.yaml"), "--exp", str(exp), "--models", "res_indrnn"]
    sets = [f"--set=src={src}", "--set=max_steps=2", f"--set=fit_args=--config {tmp_path / 'tiny.yaml'}",
            "--set=kenlm_beam=8", "--set=prep_opts=--dev-size 2 --test-size 2", "--set=nbest=4",
            "--set=lm_fit_args=--trainer.max_steps 2 --data.init_args.batch_size 2 --data.init_args.bptt 4 "
            "--data.init_args.eval_batch_size 1 --trainer.val_check_interval 1.0"]  # fmt: skip
    assert main(args + sets) == 0
    symbols = set(load_tokenizer(exp / "tokenizer").symbols[3:])
    assert {"ɹ", "ɔː", "t"} <= symbols and not symbols & {"raw", "text", "|"}
    lexicon = dict(line.split("\t") for line in (exp / "phones/lexicon.txt").read_text().splitlines())
    assert {"raw", "text", "mister", "lm", "sentence"} <= set(lexicon)
    m = json.loads((exp / "res_indrnn/metrics.json").read_text())
    assert m["train"]["steps"] == 2
    words, rescored = "beam8_kenlm_bp3.5", "beam8_kenlm_rescored_bp3.5"
    assert {"dev_phones/wer", "test_phones/wer", f"dev_{words}/wer", f"test_{words}/cer", f"dev_{rescored}/wer",
            f"test_{rescored}/cer"} <= set(m["final"])  # fmt: skip
    assert json.loads((exp / "wordlm/lstm/metrics.json").read_text())["train"]["steps"] == 2
    phone_recogs = (exp / "res_indrnn/decode/test_phones/recogs.txt").read_text()
    assert "ref=ɹ ɔː t ɛ k s t" in phone_recogs  # "raw text ...": references are phones
    for tag in (words, rescored):
        word_recogs = (exp / f"res_indrnn/decode/test_{tag}/recogs.txt").read_text().splitlines()
        refs = [line.split("ref=")[1] for line in word_recogs if "\tref=" in line]
        hyps = [line.split("hyp=")[1] for line in word_recogs if "\thyp=" in line]
        assert refs and all(r.startswith("raw text") for r in refs)  # words, as the tokenizer normalises them
        assert all(set(h.split()) <= set(lexicon) for h in hyps)  # only lexicon words come out


def test_folder_recipe_end_to_end_on_a_miniature(tmp_path, capsys):
    """Every stage of the folder recipe on twelve 8 kHz files with .txt transcripts beside them: the hashed
    train/dev/test split, the features following the audio (8 kHz: 40 mel bins) through fit --data_dir,
    res_indrnn and lstm at one parameter budget, greedy and beam decodes of test scored, the report."""
    from audio_fixtures import tone

    from toolkit.data.manifest import read_manifest

    src = tmp_path / "my audio"
    words = {"ab": 300.0, "ba": 700.0, "aa": 1200.0}  # one tone per word: learnable, not that it matters here
    for i in range(12):
        word = list(words)[i % 3]
        tone(src / f"spk{i % 2}" / f"u{i}.wav", 0.3 + 0.05 * i, sr=8000, freq=words[word], seed=i)
        (src / f"spk{i % 2}" / f"u{i}.txt").write_text(f"{word}\n")
    (tmp_path / "tiny.yaml").write_text(
        "trainer: {accelerator: cpu, enable_progress_bar: false}\n"
        "model: {init_args: {param_budget: 20000, num_layers: 2}}\n"
    )
    exp = tmp_path / "exp"
    args = ["run", str(ROOT / "recipes/folder/recipe.yaml"), "--exp", str(exp), f"--set=src={src}",
            f"--set=train_args=--config {tmp_path / 'tiny.yaml'} --trainer.max_steps 2", "--set=beam=4"]  # fmt: skip
    assert main(args) == 0
    sets = {s: read_manifest(exp / f"data/{s}.jsonl") for s in ("train", "dev", "test")}
    ids = [e["id"] for entries in sets.values() for e in entries]
    assert sorted(ids) == sorted(f"spk{i % 2}-u{i}" for i in range(12)) and all(sets.values())
    assert json.loads((exp / "cmvn.json").read_text())["num_mel_bins"] == 40
    params = {}
    for model in ("res_indrnn", "lstm"):
        m = json.loads((exp / model / "metrics.json").read_text())
        assert m["train"]["steps"] == 2 and m["config"]["model"]["encoder"] == model
        assert (m["config"]["model"]["feat_dim"], m["config"]["model"]["sampling_rate"]) == (40, 8000)
        assert {"test/wer", "test/cer", "test_beam4/wer", "test_beam4/cer"} <= set(m["final"])
        assert (exp / model / "decode/test_beam4/recogs.txt").is_file()
        params[model] = m["params"]["encoder"]
    assert abs(params["res_indrnn"] - params["lstm"]) <= 0.02 * 20000, params
    results = (exp / "RESULTS.md").read_text()
    assert "res_indrnn" in results and "test_beam4/wer" in results
    capsys.readouterr()
    assert main(args) == 0  # a second run finds every stage done
    assert capsys.readouterr().out.count("up to date, skipped") == 3 + 2 * 3 + 1
