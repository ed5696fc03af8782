# Every target sets itself up: a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

BENCH_STAMP := $(VENV)/.bench-installed
# The reference peer of `make bench` runs in a venv of its own (bench/reference-requirements.txt).
REF_VENV := .venv-reference
REF_STAMP := $(REF_VENV)/.installed

.PHONY: install run test lint typecheck unit clean bench bench-quick wrk chromium mutate

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The console's browser tests drive Debian's Chromium (Playwright's own download is not used).
chromium:
	test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)

install: $(STAMP) chromium

run: $(STAMP)
	mkdir -p var
	$(BIN)/couponry serve --demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) chromium lint typecheck
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Mutation testing of the money path (docs/testing.md); never part of `make test`. Runs one
# mutant at a time; MUTATE_ARGS="--only cart", "--again-survivors", "--report", "--fresh".
# The PostgreSQL half needs COUPONRY_TEST_POSTGRES_URL (default: the local server).
MUTATE_STAMP := $(VENV)/.mutate-installed

$(MUTATE_STAMP): $(STAMP) pyproject.toml tools/mutation/pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,mutate]' -e tools/mutation
	touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP)
	$(BIN)/couponry-mutate $(MUTATE_ARGS)

# Benchmarks are never part of `make test`. They need wrk (Debian package) and a local
# PostgreSQL (COUPONRY_BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres).
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

$(REF_STAMP): bench/reference-requirements.txt
	test -x $(REF_VENV)/bin/python || $(PYTHON) -m venv $(REF_VENV)
	$(REF_VENV)/bin/python -m pip install --quiet -r bench/reference-requirements.txt
	touch $(REF_STAMP)

wrk:
	command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk)

bench: $(BENCH_STAMP) $(REF_STAMP) wrk
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-quick: $(BENCH_STAMP) $(REF_STAMP) wrk
	$(BIN)/python bench/run.py --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(REF_VENV) var .pytest_cache .mypy_cache .ruff_cache
