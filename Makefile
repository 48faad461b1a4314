# The two commands of the README. Both set up .venv first (scripts/setup.sh, a no-op when done).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint
setup:
	bash scripts/setup.sh

demo: setup  ## the main job on the embedded real model and data
	$(VENV)/bin/peft-transfer run $(ARGS)

test: setup  ## the whole test suite (unit tests on tiny models + integration tests on the real model)
	$(PY) -m pytest -q $(ARGS)
	$(VENV)/bin/ruff check src tests examples benchmarks scripts

lint: setup
	$(VENV)/bin/ruff check src tests examples benchmarks scripts
