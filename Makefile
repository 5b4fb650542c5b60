# cyclegan-tfx: every target sets up the Python 3.10 environment first if needed.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9
# Python 3.10 is required by tfx 1.16 (see scripts/find_python310.sh).
PYTHON310 ?=
PYTEST_ARGS ?=

.PHONY: setup run test test-fast lint format lock data clean help

help:
	@echo "make run     - set up, fetch the sample dataset (DVC), run the whole pipeline (dvc repro)"
	@echo "make test    - set up, run the whole test suite (including slow end-to-end tests)"
	@echo "make lint    - ruff check + ruff format --check"
	@echo "make setup   - create .venv (Python 3.10) from requirements.lock; idempotent"

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@[ -x $(PY) ] || { py="$(PYTHON310)"; [ -n "$$py" ] || py=$$(bash scripts/find_python310.sh) || exit 1; \
	  echo "Creating $(VENV) with $$py"; "$$py" -m venv $(VENV); }
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(PY) requirements.lock
	$(BIN)/uv pip install --quiet --python $(PY) --no-deps -e .
	@touch $(STAMP)

lock:
	$(BIN)/uv pip compile --quiet requirements.in --python-version 3.10 -o requirements.lock

data: setup
	$(BIN)/dvc pull --quiet data.dvc

# dvc.yaml stages call `python`: put the virtualenv first on PATH for them.
run: data
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro
	@$(BIN)/dvc metrics show

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf build .pytest_cache
