# Every target sets itself up: a machine with only Python 3.11+ and make is enough.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

# The compiled build (docs/build.md): `pip install .` into a venv of its own, required
# to compile (AMPLITUDE_ASYNC_MYPYC=1), so a build that silently fell back to pure
# Python cannot pass as compiled.
CVENV  ?= .venv-compiled
CBIN   := $(CVENV)/bin
CSTAMP := $(CVENV)/.installed-compiled
BUILD_INPUTS := pyproject.toml setup.py $(shell find amplitude_async -name '*.py')

.PHONY: test test-pure test-compiled lint typecheck wheel demo bench bench-compare clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml setup.py
	$(BIN)/python -m pip install --quiet -e '.[dev,cli]'
	touch $(STAMP)

$(VENV)/.installed-bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,cli,bench]'
	touch $(VENV)/.installed-bench

$(CBIN)/python:
	$(PYTHON) -m venv $(CVENV)
	$(CBIN)/python -m pip install --quiet --upgrade pip

# Dependencies first (with a quick pure build), then the package itself compiled from
# this tree, again on every change.
$(CSTAMP): $(CBIN)/python $(BUILD_INPUTS)
	AMPLITUDE_ASYNC_MYPYC=0 $(CBIN)/python -m pip install --quiet '.[test,cli]'
	AMPLITUDE_ASYNC_MYPYC=1 $(CBIN)/python -m pip install --quiet --force-reinstall --no-deps .
	touch $(CSTAMP)

# Only the source folders that exist in this checkout.
SOURCES := $(wildcard amplitude_async tests benchmarks examples setup.py)

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: $(STAMP)
	$(BIN)/mypy amplitude_async

# Ruff, mypy and the suite on the editable (pure) install, then the suite again on the
# compiled build.
test: lint typecheck test-pure test-compiled

test-pure: $(STAMP)
	AMPLITUDE_ASYNC_EXPECT_BUILD=pure $(BIN)/python -m pytest -q -p no:cacheprovider

# -P and --import-mode=append keep this tree's amplitude_async/ behind the installed
# one on sys.path; tests/test_build.py fails if the source tree was imported anyway.
# Tests marked build_independent install their own copy: the pure pass ran them.
test-compiled: $(CSTAMP)
	AMPLITUDE_ASYNC_EXPECT_BUILD=compiled $(CBIN)/python -P -m pytest -q -p no:cacheprovider --import-mode=append -m 'not build_independent'

# The wheel `pip install .` would build (compiled where a C compiler works), in dist/.
wheel: $(BIN)/python
	$(BIN)/python -m pip wheel --quiet --no-deps -w dist .

demo: $(STAMP)
	$(BIN)/amplitude-async demo

bench: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks

# The user workloads on the pure and the compiled build side by side (and an older
# build with BASE=/path/to/venv); benchmarks/compare.py.
bench-compare: $(VENV)/.installed-bench $(CSTAMP)
	$(BIN)/python -m benchmarks.compare $(if $(BASE),--venv base=$(BASE)) --venv pure=$(VENV) --venv compiled=$(CVENV)

clean:
	rm -rf $(VENV) $(CVENV) build dist .mypy_cache .ruff_cache .pytest_cache
