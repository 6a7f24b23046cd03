# chatft developer entry points. `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
PY_STAMP := $(VENV)/.chatft-installed
NODE_STAMP := node_modules/.chatft-installed

.PHONY: setup test lint run dev bench clean

setup: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): pyproject.toml requirements.txt requirements-cli.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# the pip a venv starts with (23.x) fails to resolve the dev tools (InconsistentCandidate on opentelemetry-sdk)
	$(PIP) install -U "pip>=25"
	$(PIP) install -e ".[cli,dev]"
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# pytest starts Azurite on free ports (or reuses a running one) and stops what it started: tests/conftest.py
test: setup lint
	$(BIN)/pytest

# The whole loop offline (Azurite + the local backend). `make run ARGS=--keep` keeps the endpoint up.
run: setup
	$(BIN)/chatft demo $(ARGS)

bench: $(PY_STAMP)
	$(PIP) install -r requirements-bench.txt
	$(BIN)/python -m bench.validate_speed --shape ascii --skip-pandas
	$(BIN)/python -m bench.validate_speed --shape ultrachat

dev: setup
	$(BIN)/chatft dev

clean:
	rm -rf out .chatft .pytest_cache .ruff_cache .hypothesis
