"""``recur run``: run a recipe's stages, skipping those already done."""

from __future__ import annotations

import argparse

COMMAND = "run"
HELP = "run a recipe (recipes/<corpus>/recipe.yaml): prep, training, decoding, report; idempotent and resumable"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="path to recipes/<corpus>/recipe.yaml (or its folder)")
    parser.add_argument("--stage", help="start at this stage (default: the first)")
    parser.add_argument("--stop-stage", help="stop after this stage (default: the last)")
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
    results = runner.run(args.stage, args.stop_stage)
    done = sum(1 for _, s in results if s == "done")
    print(f"recur run: {recipe.name}: {done} stage(s) run, {len(results) - done} up to date; results in {runner.exp}")
    return 0
