VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install shoprelay with its dev tools

demo: $(STAMP) ## Run the whole pipeline against the simulators
	$(VENV)/bin/shoprelay demo

lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check src tests bench tools
	$(VENV)/bin/ruff format --check src tests bench tools
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy bench tools

test: lint ## Lint, types, then the full test suite
	$(VENV)/bin/pytest -q

unit: $(STAMP) ## Only the fast unit tests
	$(VENV)/bin/pytest -q tests/unit

bench: $(STAMP) ## Benchmarks: ingest, drain, end to end, on SQLite and PostgreSQL
	$(PY) -m bench

format: $(STAMP) ## Format and fix what ruff can
	$(VENV)/bin/ruff format src tests bench tools
	$(VENV)/bin/ruff check --fix src tests bench tools

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

.PHONY: help setup demo lint test unit bench format clean
