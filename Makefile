# The README's commands. Each target creates .venv on first use and installs into it:
# torch==2.13.0 first, then the package, whose `torch>=2.1` then keeps that build. Which build
# pip finds for the pin depends on its index: on Linux the default one gives the CUDA build;
# TORCH_INDEX=URL installs torch from another index (PyTorch's CPU-only one, for instance).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
TORCH_INDEX ?=
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-all lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[dev,ray,jd,tensorboard,hf]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mtl-sched demo

# Tests that start many processes run alone, after the others, so that none of them
# competes with the parallel run for the CPUs.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow and not serial"
	$(BIN)/python -m pytest -m "serial and not slow"

test-all: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -m ""

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
