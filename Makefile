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

# Regression gate (docs/gate.md): .ci/bench-gate times the smoke suite in CI_ROUNDS rounds and compares them with
# the committed baseline of this machine type, creating it on first use. The script exits 0 (no row slower),
# 1 (a row slower) or 2 (bad input); make turns any failure into its own 2, so the line below names the status.
CI_DEVICE ?= cpu
CI_ROUNDS ?= 3
CI_BENCH_ARGS ?= --threads 1 --budget-s 0.3 --warmup-s 0.1 --min-samples 20
CI_BENCH_OUT ?= results/ci

ci-bench: setup
	@PY=$(PY) CI_DEVICE=$(CI_DEVICE) CI_ROUNDS=$(CI_ROUNDS) CI_BENCH_ARGS="$(CI_BENCH_ARGS)" CI_BENCH_OUT=$(CI_BENCH_OUT) \
		bash .ci/bench-gate; status=$$?; \
	case $$status in 0) ;; 1) echo "ci-bench: exit 1: a row is slower (see $(CI_BENCH_OUT)/gate.md)";; \
		*) echo "ci-bench: exit $$status: bad input, not a verdict";; esac; exit $$status

# Evidence for the gate: A/A false alarms and injected-slowdown detection, ours vs pytest-benchmark (~4 min).
gate-eval: setup
	$(PY) tests/perf/gate_eval.py

.PHONY: ci-bench gate-eval
