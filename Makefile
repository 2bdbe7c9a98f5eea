# Commerce gateway. `make run` and `make test` work on a fresh machine:
# they create .venv and install the project with its embedded stores.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench bench-quick install clean schema

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[embedded,test,bench]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/commerce-gateway serve --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

schema: $(STAMP)
	$(BIN)/python -m gateway.cli.print_schema > schema.graphql

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks --quick --results /tmp/bench-quick

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache
