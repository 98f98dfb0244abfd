# Two entry points do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl
export WANDB_MODE ?= offline

.PHONY: demo test lint lint-imports install clean bench proto

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rapid-eval --out runs/demo

# the layer contracts of pyproject.toml ([tool.importlinter]); see docs/architecture.md. tasks/,
# agents/ and eval/ are linked into rapid_env/, so lint-imports and mypy read the package in place.
lint-imports: $(STAMP)
	$(BIN)/lint-imports --no-cache

test: $(STAMP) lint-imports
	$(BIN)/ruff check .
	$(BIN)/mypy -p rapid_env
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_loop.py
	$(BIN)/python benchmarks/bench_vla.py
	$(BIN)/python benchmarks/bench_corruptions.py
	$(BIN)/python benchmarks/bench_link.py

# rapid-serve's gRPC modules (serve/rapid_serve_pb2*.py, checked in) from its .proto; the
# generated service module imports its messages package-relative, as installed
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I serve --python_out=serve --grpc_python_out=serve --pyi_out=serve serve/rapid_serve.proto
	sed -i 's/^import rapid_serve_pb2 as /from rapid_env.serve import rapid_serve_pb2 as /' serve/rapid_serve_pb2_grpc.py

clean:
	rm -rf $(VENV) build *.egg-info
