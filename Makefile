PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test

.PHONY: demo test test-all bench lint docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/particles demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m ""

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# The site, offline, into site/ (warnings are errors). The hook docs/gen_examples.py first
# draws every figure at --tiny into docs/.examples/ (cached until particles/ changes);
# PARTICLES_DOCS_FIGURES=0 builds without them.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(BIN)/ruff check particles tests experiments benchmarks docs
	$(BIN)/ruff format --check particles tests experiments benchmarks docs

clean:
	rm -rf $(VENV) .pytest_cache site docs/.examples
