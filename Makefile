# EnergyWatch developer commands. `make help` lists them.
# Everything installs itself: a virtualenv in .venv, the local services in .local/.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	@touch $(STAMP)

.PHONY: install
install: $(STAMP) ## create .venv and install EnergyWatch with its dev tools

.PHONY: run
run: $(STAMP) ## the main job: stack up, simulator + worker + notifier, print alerts and a summary
	$(BIN)/energywatch run

.PHONY: test
test: $(STAMP) ## install everything, bring the local stack up, run the whole test suite
	$(BIN)/energywatch stack up
	$(BIN)/pytest $(PYTEST_ARGS)

.PHONY: test-fast
test-fast: $(STAMP) ## only the tests that need no services
	$(BIN)/pytest -m "not services" $(PYTEST_ARGS)

.PHONY: lint
lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

.PHONY: format
format: $(STAMP) ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: stack-up stack-down stack-status
stack-up: $(STAMP) ## start Kafka, TimescaleDB and Prometheus (installs them on first use)
	$(BIN)/energywatch stack up
stack-down: $(STAMP) ## stop the local services
	$(BIN)/energywatch stack down
stack-status: $(STAMP) ## show each local service as healthy or why it is not
	$(BIN)/energywatch stack status

.PHONY: clean
clean: ## remove caches (keeps .venv and the local services' data)
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
