# `make demo` and `make test` work on a fresh machine: they create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck docs browser pytest bench clean

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

# The documentation site, built offline into build/site; --strict: a broken reference, link or
# include fails. (Material prints an end-of-life notice about MkDocs 2 unless told not to.)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# tests/test_dashboard.py drives Debian's Chromium through Playwright (no browser download):
# installed here when root, as `bench` installs wrk; without it those tests fail, saying so.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: the dashboard tests will fail"; \
	  else echo "no Chromium at $(CHROMIUM): install it (sudo apt-get install -y chromium) or set" \
	    "CHROMIUM=/path/to/chromium; the dashboard tests fail without it"; fi; fi

pytest: $(STAMP) browser
	KLING_TESTKIT_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -q -n 2

test: lint typecheck docs pytest

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
