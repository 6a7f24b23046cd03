# chatft developer entry points. `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
PY_STAMP := $(VENV)/.chatft-installed
NODE_STAMP := node_modules/.chatft-installed

.PHONY: setup test lint run bench clean

setup: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): pyproject.toml requirements.txt requirements-cli.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
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

run: $(PY_STAMP)
	$(BIN)/chatft validate samples/chat_sample.jsonl
	$(BIN)/chatft prepare samples/chat_sample.jsonl --out out/sample
	@echo
	@echo "Prepared samples/chat_sample.jsonl into out/sample (train/validation/test.jsonl, report.md, report.json)."
	@echo "Not built yet: submitting the fine-tuning job, deploying, and the offline loop (issues 3-6)."

bench: $(PY_STAMP)
	$(PIP) install -r requirements-bench.txt
	$(BIN)/python -m bench.validate_speed

clean:
	rm -rf out .pytest_cache .ruff_cache .hypothesis
