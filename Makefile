# The two commands a newcomer needs: `make demo` and `make test` (both install first).
PYTHON ?= python3

.PHONY: install demo test lint gpu-check

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

# on a GPU machine: the CUDA tests, `recur bench --device cuda` (layer, ctc_step) and a 2-minute FSDD
# training run, then one pass/fail summary (bench/gpu_check.md); see docs/GPU.md
gpu-check: install
	recur bench --gpu-check --out bench
