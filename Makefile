# `make demo` and `make test` work on a fresh machine: they create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m kling_testkit.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

test: lint typecheck pytest

# bench/compare.py: the issue-10 table (wrk over loopback; wrk is installed here when root).
# A quick check: make bench BENCH_ARGS="--duration 3 --runs 3". bench/servers.py (WSGI servers
# side by side; needs waitress) is run by hand.
bench: $(STAMP)
	$(BIN)/python bench/bench_mock.py
	$(BIN)/python bench/fixture_costs.py
	@if ! command -v wrk >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq wrk) || echo "could not install wrk"; \
	  else echo "wrk is not on PATH: install it (sudo apt-get install -y wrk; brew install wrk)" \
	    "for the wrk rows of bench/compare.py; they are skipped now"; fi; fi
	$(BIN)/python bench/compare.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
