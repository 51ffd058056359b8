"""``recur run``: run a recipe's stages, skipping those already done."""

from __future__ import annotations

import argparse

from toolkit.cli.main import HelpFormatter

COMMAND = "run"
HELP = "run a recipe (recipes/<corpus>/recipe.yaml): prep, training, decoding, report; idempotent and resumable"


EPILOG = "`recur run RECIPE --help` also lists RECIPE's stages:\nthe names --stage and --stop-stage take."


class _Recipe(argparse.Action):
    """The recipe argument. Read as soon as it is given, its stages go into the help's epilog, so that
    ``recur run RECIPE --help`` lists them (a stage name is only known once the recipe is read)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from toolkit.errors import UserError

        setattr(namespace, self.dest, values)
        try:
            parser.epilog = stage_table(values)
        except UserError:  # a missing or broken recipe is reported when the command runs
            pass


class _RawEpilog(HelpFormatter):
    """Keeps the lines of a text that has several (the stage table) as they are; wraps a one-line text."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" not in text:
            return super()._fill_text(text, width, indent)
        return "".join(indent + line for line in text.splitlines(keepends=True))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = _RawEpilog
    parser.add_argument("recipe", action=_Recipe, help="path to recipes/<corpus>/recipe.yaml (or its folder)")
    parser.add_argument(
        "--stage", help="start at this stage, by name (`recur run RECIPE --help` lists them) (default: the first)"
    )
    parser.add_argument("--stop-stage", help="stop after this stage, by name (default: the last)")
    parser.add_argument("--models", help="comma-separated subset of the recipe's models")
    parser.add_argument("--sets", help="comma-separated subset of the recipe's sets (for its per_set stages)")
    parser.add_argument("--devices", type=int, default=1, help="devices per node for training (DDP when > 1)")
    parser.add_argument("--num-nodes", type=int, default=1, help="nodes for training (launch with SLURM/torchrun)")
    parser.add_argument("--exp", help="experiment folder (default: the recipe's exp)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY[.NAME]=VALUE",
        help="override a recipe variable, for all or (KEY.NAME=VALUE) for one model or set (repeatable)",
    )
    parser.add_argument("--force", action="store_true", help="redo the selected stages even if up to date")
    parser.add_argument(
        "--list", action="store_true", help="list the stages, whether each is done and why not, run nothing"
    )


def stage_table(path: str) -> str:
    """The stages of the recipe at ``path``: name, what it runs once per (model, set), and its help."""
    from toolkit.recipe import load_recipe

    recipe = load_recipe(path)
    rows = [(s.name, "per " + " and ".join(a for a, on in (("model", s.per_model), ("set", s.per_set)) if on)
             if s.per_model or s.per_set else "", s.help) for s in recipe.stages]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in (0, 1)]
    lines = [f"stages of {recipe.path} (in order; --stage/--stop-stage take these names):"]
    lines += [f"  {name:<{widths[0]}}  {each:<{widths[1]}}  {note}".rstrip() for name, each, note in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from toolkit.recipe import RecipeRunner, load_recipe

    recipe = load_recipe(args.recipe)
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    sets = [s.strip() for s in args.sets.split(",") if s.strip()] if args.sets else None
    from toolkit.errors import UserError

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = value
    runner = RecipeRunner(
        recipe, args.exp, args.devices, args.num_nodes, models, args.force, overrides=overrides, sets=sets
    )
    if args.list:
        for job, why in runner.status(args.stage, args.stop_stage):
            state = "done" if why is None else "to do"
            note = job.stage.help if why is None else why
            print(f"{job.label:<28} {state:<6} {note}".rstrip())
        return 0
    try:
        results = runner.run(args.stage, args.stop_stage)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            "run the same command again to go on (finished stages are skipped, an interrupted training resumes "
            "from its last.ckpt)"
        ) from None
    done = sum(1 for _, s in results if s == "done")
    print(f"recur run: {recipe.name}: {done} stage(s) run, {len(results) - done} up to date; results in {runner.exp}")
    return 0
