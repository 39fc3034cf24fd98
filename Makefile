# Every target creates .venv when it is missing and is safe to re-run.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)

.PHONY: venv test demo up down status lint browser bench clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -r requirements.txt -r requirements-dev.txt
	@touch $@

# Headless Chromium for the browser tests of the secret page. Installs the
# Debian packages when they are missing and apt-get can run (root).
browser:
	@bash scripts/ensure-chromium.sh

test: venv browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: venv
	$(BIN)/python -m include.demo

up: venv
	$(BIN)/python -m include.localstack up

down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m include.localstack down; fi

status: venv
	$(BIN)/python -m include.localstack status

lint: venv
	$(BIN)/ruff check .

# Ingestion benchmark on a generated 1 GiB export; results go in docs/benchmarks.md.
bench: venv
	$(BIN)/python -m bench.ingest_benchmark

clean: down
	rm -rf .local
