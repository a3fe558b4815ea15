# Two commands do all the set-up on a fresh machine with Python 3.11 and pip:
#   make bench   -> installs what it needs, runs the default suite
#   make test    -> installs what it needs, runs the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Installed only when no torch is importable: a torch the user already has is kept.
TORCH_SPEC ?= torch==2.13.0
CONFIG ?= seed
BENCH_ARGS ?=

.PHONY: bench test setup gpu-check peers clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/.installed

bench: setup
	$(PY) -m bench run $(CONFIG) $(BENCH_ARGS)

test: setup
	$(PY) -m pytest -q

# Timing comparison against torch.utils.benchmark (and triton's do_bench on a GPU).
peers: setup
	$(PY) tests/perf/peers.py

# One prepared script for a lent GPU machine: CUDA tests, the seed suite, the peer comparison.
gpu-check:
	bash tests/perf/gpu_check.sh

clean:
	rm -rf $(VENV) build *.egg-info
