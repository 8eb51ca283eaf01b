# Set-up and entry points. Each target creates .venv when missing.
# TORCH pins the torch release installed before the project: 2.13.0 is a CPU build on the development
# machines' disk and a CUDA build from PyPI on a user's Linux machine. Override: make TORCH=torch==2.9.1 ...
PY ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench lint typecheck format setup clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH)"
	# The optional extras too, so their tests run: importers, viewer, Gymnasium, the car's CAN bus.
	$(BIN)/python -m pip install -q -e ".[dev,import,view,gym,car]"
	$(BIN)/python -m pip install -q -e ".[carla]" || echo "note: no carla client wheel for this platform; carla tests will be skipped"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/drive launch launch/demo.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/core.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# mypy alone; the packages and strictness are set in pyproject.toml [tool.mypy].
typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info
