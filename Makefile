# Two commands for a newcomer: `make run` (set up, then chat) and `make test` (set up, then test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench benchmark clean chromium

# constraints.txt pins every package to the version the test suite passes with.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,postgres]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/faqbot run all

test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

# The studio's browser tests drive Debian's Chromium (never a browser Playwright downloads).
chromium:
	@test -x /usr/bin/chromium || { \
	    echo "installing Debian's chromium for the studio's browser tests"; \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	    else sudo apt-get update -q && sudo apt-get install -y -q chromium; fi; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Development tools, run from the checkout (benchmarks/ is not installed with faqbot); ARGS adds
# flags, e.g. `make bench ARGS=--json`.
# Speed, start-up and memory against baselines in one run (minutes; docs/performance.md).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.speed $(ARGS)

# Accuracy against baselines on the public data sets under DATASETS (docs/benchmarks.md).
DATASETS ?= ../shared/datasets
benchmark: $(STAMP)
	$(BIN)/python -m benchmarks.public_datasets $(DATASETS) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
