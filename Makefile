# chatft developer entry points. `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
PY_STAMP := $(VENV)/.chatft-installed
NODE_STAMP := node_modules/.chatft-installed
TRAIN_STAMP := $(VENV)/.chatft-train-installed

# The Python the app runs on in Azure (pyproject's [tool.chatft] deployed-python; infra/main.bicep deploys the
# same): .venv-deployed runs the deployed tests on it with requirements.txt as Azure installs it.
DEPLOYED_VERSION := $(shell sed -n 's/^deployed-python = "\([0-9.]*\)"/\1/p' pyproject.toml)
DEPLOYED_PYTHON ?= $(shell for p in $$(command -v python$(DEPLOYED_VERSION)) $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$(DEPLOYED_VERSION).*/bin/python$(DEPLOYED_VERSION) 2>/dev/null | sort -V -r) /usr/local/bin/python$(DEPLOYED_VERSION) /usr/bin/python$(DEPLOYED_VERSION); do "$$p" -c 'import sys; sys.exit(f"{sys.version_info[0]}.{sys.version_info[1]}" != "$(DEPLOYED_VERSION)")' 2>/dev/null && { echo "$$p"; break; }; done)
DVENV := .venv-deployed
DBIN := $(DVENV)/bin
DPIP := $(DBIN)/python -m pip --disable-pip-version-check -q
DEPLOYED_STAMP := $(DVENV)/.chatft-installed
# The oldest azure-functions 2.x that requirements.txt admits: the real-worker test runs it beside the newest.
WORKER_SDK_OLDEST := 2.1.0

.PHONY: setup setup-train test test-deployed deployed-python lint run dev bench clean

setup: $(PY_STAMP) $(NODE_STAMP) $(DEPLOYED_STAMP)

$(PY_STAMP): pyproject.toml requirements.txt requirements-cli.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# the pip a venv starts with (23.x) fails to resolve the dev tools (InconsistentCandidate on opentelemetry-sdk)
	$(PIP) install -U "pip>=25"
	$(PIP) install -e ".[cli,dev]"
	touch $@

# Fails in CI (CI=true) when the deployed Python is missing; elsewhere says so and carries on without it.
$(DEPLOYED_STAMP): pyproject.toml requirements.txt requirements-deployed-test.txt tests/worker/function_rpc.proto
	@if [ -z "$(DEPLOYED_PYTHON)" ]; then \
	  echo "make: Python $(DEPLOYED_VERSION), the Python chatft runs on in Azure, is not on this machine: install it (pyenv install $(DEPLOYED_VERSION)) or pass DEPLOYED_PYTHON=/path/to/python$(DEPLOYED_VERSION)" >&2; \
	  if [ -n "$${CI:-}" ]; then exit 1; fi; \
	  echo "make: going on without the deployed-runtime tests (CI stops here)" >&2; \
	else \
	  set -e; \
	  test -x $(DBIN)/python || $(DEPLOYED_PYTHON) -m venv $(DVENV); \
	  $(DPIP) install -U "pip>=25"; \
	  $(DPIP) install -r requirements.txt -r requirements-deployed-test.txt; \
	  $(DPIP) install --no-deps --upgrade --target $(DVENV)/sdk/azure-functions-$(WORKER_SDK_OLDEST) azure-functions==$(WORKER_SDK_OLDEST); \
	  $(DBIN)/python -m tests.worker.protos; \
	  touch $@; \
	fi

deployed-python:
	@echo $(DEPLOYED_VERSION)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The local LoRA trainer's libraries (LOCAL_TRAINER=lora): optional for running chatft, installed for the tests.
setup-train: $(TRAIN_STAMP)

$(TRAIN_STAMP): $(PY_STAMP) requirements-train.txt
	$(PIP) install -e ".[cli,dev,train]"
	touch $@

# pytest starts Azurite on free ports (or reuses a running one) and stops what it started: tests/conftest.py
test: setup setup-train lint
	$(BIN)/pytest
	$(MAKE) --no-print-directory test-deployed

# The function-app tests (marked `deployed`) and the real worker, on the deployed Python and requirements.
test-deployed: setup
	@if [ -f $(DEPLOYED_STAMP) ]; then \
	  echo "deployed runtime: $$($(DBIN)/python -c 'import sys, importlib.metadata as m; print(f"Python {sys.version.split()[0]}, azure-functions {m.version(\"azure-functions\")}, azure-functions-runtime {m.version(\"azure-functions-runtime\")}")')"; \
	  $(DBIN)/python -m pytest -m deployed; \
	elif [ -n "$${CI:-}" ]; then echo "make: no deployed-runtime environment ($(DVENV))" >&2; exit 1; \
	else echo "make: deployed-runtime tests skipped: no Python $(DEPLOYED_VERSION) (see above)"; fi

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
	rm -rf out .chatft .pytest_cache .ruff_cache .hypothesis $(DVENV)
