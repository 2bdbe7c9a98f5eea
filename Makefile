# Commerce gateway. Every target works on a fresh machine with python3 and PyPI:
# it creates .venv, puts uv in it with pip, and installs from uv.lock what the
# target needs (run: runtime + embedded stores; test: + test tools; bench: + plots, profiler).

PYTHON ?= python3
PORT ?= 8000
# pytest-xdist workers for `make test`, each with its own embedded stores (0: no worker, in-process).
TEST_WORKERS ?= 2
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
UV := $(BIN)/uv
# --locked: stop (rather than install a stale set) when pyproject.toml changed without `make lock`.
# --inexact: each target adds its extras and keeps what another target installed (and uv itself).
SYNC := $(UV) sync --locked --inexact --extra embedded
# uv works on the venv made here with the machine's python3 and never downloads one of its own.
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never
# Installed packages compiled to bytecode once, at install: uv does not by default, and where
# PYTHONDONTWRITEBYTECODE is set (this machine sets it) nothing ever writes them, so every
# process (each CLI command, `serve`, every test subprocess) compiled SQLAlchemy, alembic and
# the rest from source again: about 2 s of CPU per start.
export UV_COMPILE_BYTECODE := 1

.PHONY: run test lint typecheck bench bench-quick install lock clean schema

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"

# One stamp per set of extras: a second `make test` installs nothing until uv.lock changes.
$(VENV)/.installed-run: $(UV) uv.lock pyproject.toml
	$(SYNC)
	touch $@

$(VENV)/.installed-test: $(UV) uv.lock pyproject.toml
	$(SYNC) --extra test
	touch $@

$(VENV)/.installed-bench: $(UV) uv.lock pyproject.toml
	$(SYNC) --extra bench
	touch $@

install: $(VENV)/.installed-run $(VENV)/.installed-test $(VENV)/.installed-bench

# After editing dependencies in pyproject.toml: resolve again and commit uv.lock with it.
lock: $(UV)
	$(UV) lock

run: $(VENV)/.installed-run
	$(BIN)/commerce-gateway serve --host 127.0.0.1 --port $(PORT)

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

schema: $(VENV)/.installed-run
	$(BIN)/python -m gateway.cli.print_schema > schema.graphql

bench: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

bench-quick: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks --quick --results /tmp/bench-quick

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache
