# One command per task. CI runs `make test` (see .ci/run).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install deploy-tools demo test unit chaos integration lint format schemas bench stack-up stack-down clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## Create .venv and install Upward with its pinned dependencies

deploy-tools:  ## Build helm (Go module proxy) and the CRD schema validator (npm), once, into ~/.cache/upward
	@bash deploy/tools/install-helm.sh >/dev/null
	@bash tests/deploy/crd_validator/install.sh >/dev/null

demo: install  ## Start the local stack and run the demo program through simulated time
	$(BIN)/upward stack up
	$(BIN)/upward demo

test: install deploy-tools  ## Run the whole test suite (starts its own Kafka and PostgreSQL)
	$(BIN)/pytest -ra

unit: install deploy-tools  ## Run only the tests that need no broker or database
	$(BIN)/pytest -ra -m 'not integration'

chaos: install  ## Run the long fault-suite cases (kills, broker restarts, a database stopped 30 s; ~15 min)
	$(BIN)/pytest -ra -s -m chaos tests/chaos

lint: install  ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install  ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schemas: install  ## Regenerate schemas/jsonschema and schemas/asyncapi.yaml
	$(BIN)/python -m schemas.generate

bench: install  ## Run the benchmarks (kit pipeline, matching engine, services) and write docs/benchmarks.md
	$(BIN)/python -m benchmarks

stack-up: install  ## Start the local stack
	$(BIN)/upward stack up

stack-down: install  ## Stop the local stack
	$(BIN)/upward stack down

clean:  ## Remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
