# The two commands a newcomer needs: `make demo` and `make test` (both install first).
PYTHON ?= python3

.PHONY: install demo test lint

install:
	$(PYTHON) -m pip install -q -e '.[dev]'

# the embedded default: synthesise a spoken corpus offline, train res_indrnn / irnn / lstm and an LM,
# decode, print the results table (exp/synth/RESULTS.md)
demo: install
	recur run recipes/synth/recipe.yaml

lint:
	ruff check .

test: install lint
	$(PYTHON) -m pytest
