# One obvious entry point. `make help` lists the targets; CI runs `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help install run test lint fmt bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/voucherify-ingest: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# flower too, so the test that starts Flower against our broker runs instead of skipping; the test
	# extra brings playwright, which drives the system's chromium in the console's browser test
	$(BIN)/python -m pip install --quiet -e '.[test,flower]'
	@touch $@

install: $(BIN)/voucherify-ingest ## create .venv and install the service with its test tools

run: install ## install, then run intake + worker + reconciler on the embedded store (Ctrl-C stops all)
	$(BIN)/voucherify-ingest run

test: install ## install, then lint, type-check and run the whole test suite with branch coverage
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest --cov --cov-report=
	@echo "branch coverage (in-process): $$($(BIN)/coverage report --format=total)%"

lint: install ## ruff check + format check + mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install ## format and fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: ## remove the virtualenv and caches (not ./var, which holds local data)
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .mypy_cache .coverage

bench: install ## full benchmark (~20 min): intake, pipeline, batch sweep vs Flask/Celery ceilings -> docs/benchmarks.md
	$(BIN)/python -m benchmarks.run
