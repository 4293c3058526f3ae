# Every target creates .venv when missing and installs the pinned, tested set (constraints.txt).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: setup train test lint notebook clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

$(VENV)/.notebook: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,notebook]'
	touch $@

## train LeNet-5 with the tutorial's best settings and print its test accuracy (ARGS="..." adds flags)
train: $(STAMP)
	$(BIN)/lenet5 train $(ARGS)

## lint, type-check and run the default test suite (slow tests: make test ARGS="-m slow")
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/pytest $(ARGS)

## open the tutorial notebook in Jupyter (installs the notebook extra on first use)
notebook: $(VENV)/.notebook
	$(BIN)/jupyter notebook $(if $(filter 0,$(shell id -u)),--allow-root) docs/tutorial.ipynb $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

clean:
	rm -rf $(VENV) benchmarks/.venv-peers .pytest_cache .mypy_cache .ruff_cache src/*.egg-info
