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

# Runs the suite and writes its report into the run folder (the first time on a machine it also measures the
# machine's peaks, announced, for the roofline; they are cached under results/peaks/).
bench: setup
	$(PY) -m bench run $(CONFIG) --report --probe-peaks $(BENCH_ARGS)

# The layer contracts (pyproject.toml, [tool.importlinter]) first, then the tests.
test: setup
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q --benchmark-disable

# Timing comparison against torch.utils.benchmark (and triton's do_bench on a GPU).
peers: setup
	$(PY) tests/perf/peers.py

# One prepared script for a lent GPU machine: CUDA tests, the seed suite, the peer comparison.
gpu-check:
	bash tests/perf/gpu_check.sh

clean:
	rm -rf $(VENV) build *.egg-info

# Regression gate (README, "CI regression gate"): time the smoke suite in CI_ROUNDS rounds (their samples
# are pooled) and compare with the committed baseline of this machine type
# (results/baselines/<machine_key>/), creating that baseline on first use.
# Exit status 1 when a row got slower, 2 for bad input or mismatched environments.
CI_DEVICE ?= cpu
CI_ROUNDS ?= 3
CI_BENCH_ARGS ?= --threads 1 --budget-s 0.3 --warmup-s 0.1 --min-samples 20
CI_BENCH_OUT ?= results/ci

ci-bench: setup
	rm -rf $(CI_BENCH_OUT)
	for i in $$(seq $(CI_ROUNDS)); do \
		$(PY) -m bench run smoke --device $(CI_DEVICE) --out $(CI_BENCH_OUT) $(CI_BENCH_ARGS) || exit $$?; \
	done
	@base=$$($(PY) -m bench baseline --where --device $(CI_DEVICE)); \
	if [ -f "$$base/results.csv" ]; then \
		$(PY) -m bench compare "$$base" $(CI_BENCH_OUT); \
	else \
		$(PY) -m bench baseline $(CI_BENCH_OUT) && echo "ci-bench: first use on this machine type: created $$base; commit it"; \
	fi

# Evidence for the gate: A/A false alarms and injected-slowdown detection, ours vs pytest-benchmark (~4 min).
gate-eval: setup
	$(PY) tests/perf/gate_eval.py

.PHONY: ci-bench gate-eval
