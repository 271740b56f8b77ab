# Two commands on a fresh clone: `make compare` runs the study, `make test` runs the tests.
# Both create .venv and install the project into it when needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# Offline machines keep the datasets in ../shared/datasets; use it unless MNISTLAB_DATA_DIR is set.
ifneq ($(wildcard ../shared/datasets),)
export MNISTLAB_DATA_DIR ?= $(abspath ../shared/datasets)
endif

.PHONY: compare test test-fast browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The exact versions every install is tested with (torch among them: a CPU build, never CUDA wheels).
CONSTRAINTS := constraints.txt

# Stamp files re-run the install when pyproject.toml or the constraints change.
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/pip install -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/pip install -c $(CONSTRAINTS) -e '.[test]'
	touch $@ $(VENV)/.installed

compare: $(VENV)/.installed
	$(BIN)/mnistlab compare $(ARGS)

# Two processes share the cores, each taking a whole test file at a time, so a file's costly fixtures are built
# once (18-20 minutes on 2 AVX2 cores). --durations lists the slowest tests, to show where the time goes.
test: $(VENV)/.installed-test browser
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=20 $(PYTEST_ARGS)

# The fast suite: no real dataset, no browser, no Ray cluster, spread over two
# processes (under 2 minutes on 2 AVX-512 cores, 3 on AVX2 ones).
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not slow and not browser and not ray" -n 2 $(PYTEST_ARGS)

# Browser tests drive Debian's chromium through Playwright; install it when missing.
browser:
	./scripts/install-chromium

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
