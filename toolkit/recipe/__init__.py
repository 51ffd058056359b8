"""Recipes: named, idempotent stages from a raw corpus to a results table (``recur run``)."""

from .runner import RecipeRunner, StageFailed
from .spec import Recipe, Stage, load_recipe

__all__ = ["Recipe", "RecipeRunner", "Stage", "StageFailed", "load_recipe"]
