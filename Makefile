# The two commands a newcomer needs: `make demo` and `make test` (both install first).
PYTHON ?= python3

.PHONY: install demo test lint

install:
	$(PYTHON) -m pip install -q -e '.[dev]'

demo: install
	recur layers

lint:
	ruff check .

test: install lint
	$(PYTHON) -m pytest -q
