# Two entry points do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl
export WANDB_MODE ?= offline

.PHONY: demo test lint lint-imports install lerobot-venv lerobot-venv-if-possible clean bench proto train-chunk-regress

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build. The small openpi-protocol
# server (packages/rapid-policy-server: rapid-policy-server, --policy openpi:ws://...) is its own
# distribution, editable here. openpi-client is only the tests' reference client: --no-deps, as
# it pins numpy<2 for no reason its websocket client needs (it imports websockets and msgpack);
# openpi-server (openpi's own WebsocketPolicyServer) is the reference server our client is tested against.
# The dev extra brings vla-eval (allenai's vla-evaluation-harness), the reference model server and
# codec the --policy vla-eval:ws://... client is tested against; the client does not import it.
$(STAMP): $(BIN)/python pyproject.toml packages/rapid-policy-server/pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e packages/rapid-policy-server
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	$(BIN)/pip install --quiet --no-deps openpi-client==0.1.2 openpi-server==0.1.0
	touch $(STAMP)

install: $(STAMP)

# LeRobot cannot share .venv (it needs Python >= 3.12, torch < 2.12): its own venv hosts
# `rapid-policy-server --lerobot DIR` (packages/rapid-policy-server[lerobot]); the tests drive it
# from .venv over the openpi protocol. PyPI's torch here is a CUDA build (about 5 GB in all).
LEROBOT_PY ?= $(shell for p in python3.12 $(HOME)/.pyenv/versions/3.12*/bin/python3.12; do $$p -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { command -v $$p; break; }; done)
LEROBOT_VENV := .venv-lerobot
LEROBOT_STAMP := $(LEROBOT_VENV)/.installed
$(LEROBOT_STAMP): packages/rapid-policy-server/pyproject.toml
	@test -n "$(LEROBOT_PY)" || { echo "make: no python3.12 found for LeRobot's venv; set LEROBOT_PY=/path/to/python3.12"; exit 1; }
	$(LEROBOT_PY) -m venv $(LEROBOT_VENV)
	$(LEROBOT_VENV)/bin/pip install --quiet --upgrade pip
	$(LEROBOT_VENV)/bin/pip install --quiet -e 'packages/rapid-policy-server[lerobot]'
	touch $(LEROBOT_STAMP)

lerobot-venv: $(LEROBOT_STAMP)

# make test builds LeRobot's venv where a Python 3.12 exists; without one, the LeRobot tests skip
# and say why (tests/packages/test_lerobot_server.py), the rest of the suite runs.
ifeq ($(LEROBOT_PY),)
lerobot-venv-if-possible:
	@echo "make: WARNING: no python3.12 here; LeRobot's venv is not built and its tests skip (set LEROBOT_PY=/path/to/python3.12)"
else
lerobot-venv-if-possible: $(LEROBOT_STAMP)
endif

demo: $(STAMP)
	$(BIN)/rapid-eval --out runs/demo

# the layer contracts of pyproject.toml ([tool.importlinter]); see docs/architecture.md. tasks/,
# agents/ and eval/ are linked into rapid_env/, so lint-imports and mypy read the package in place.
lint-imports: $(STAMP)
	$(BIN)/lint-imports --no-cache

test: $(STAMP) lerobot-venv-if-possible lint-imports
	$(BIN)/ruff check .
	$(BIN)/mypy -p rapid_env
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_loop.py
	$(BIN)/python benchmarks/bench_vla.py
	$(BIN)/python benchmarks/bench_corruptions.py
	$(BIN)/python benchmarks/bench_link.py

# The shipped chunk-regress (v2) from scratch: seeded demos (corner4 + wrist camera, object/goal
# targets), 80 min of training on one thread, the card's evaluation. Writes runs/train/.
SEEN_NOISE := gaussian_noise,shot_noise,impulse_noise,defocus_blur,motion_blur,brightness,contrast,jpeg_compression,pixelate,saturate
train-chunk-regress: $(STAMP)
	mkdir -p runs/train
	$(BIN)/rapid-train collect --tasks mt10 --demos 150 --workers 1 --dart-sigma 0.1 --cameras main,gripperPOV --targets --first-seed 100000 --out runs/train/mt10-a.npz
	$(BIN)/rapid-train collect --tasks mt10 --demos 75 --workers 1 --dart-sigma 0.25 --cameras main,gripperPOV --targets --first-seed 100150 --out runs/train/mt10-b.npz
	$(BIN)/rapid-train train --family chunk-regress --data runs/train/mt10-a.npz,runs/train/mt10-b.npz --out runs/train/chunk-regress --minutes 80 --threads 1 --vision-layers 3 --aux-weight 1 --jitter 0.2 --noise-aug $(SEEN_NOISE) --noise-share 0.25
	$(BIN)/rapid-train eval --checkpoint runs/train/chunk-regress --seeds 20
	$(BIN)/rapid-train eval --checkpoint runs/train/chunk-regress --seeds 20 --noise fog:2

# rapid-serve's gRPC modules (serve/rapid_serve_pb2*.py, checked in) from its .proto; the
# generated service module imports its messages package-relative, as installed
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I serve --python_out=serve --grpc_python_out=serve --pyi_out=serve serve/rapid_serve.proto
	sed -i 's/^import rapid_serve_pb2 as /from rapid_env.serve import rapid_serve_pb2 as /' serve/rapid_serve_pb2_grpc.py

clean:
	rm -rf $(VENV) $(LEROBOT_VENV) build *.egg-info
