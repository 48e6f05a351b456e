# jaxprune: the two commands first (see README).
#   make demo   -- set up, prepare Fashion-MNIST offline, train the default experiment
#   make test   -- set up with the test extra, lint, run the test suite
#   make reproduce-mini -- one experiment per paper on Fashion-MNIST (CPU, < 90 min)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WORKDIR ?= workdirs/mlp7_fashion_mnist
CONFIG ?= configs/mlp7_fashion_mnist.py
MINI_WORKDIR ?= workdirs/mini
MINI_OUT ?= experiments/results/mini

.PHONY: demo test test-slow lint format bench bench-gpu reproduce-mini reproduce-di-long long-runs long-runs-shards long-runs-gpu long-runs-save clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m jaxprune.data prepare
	$(PY) -m jaxprune.main --config=$(CONFIG) --workdir=$(WORKDIR)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed-test
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Two tiers: `make test` (under 15 min on 2 cores) leaves out the tests marked
# slow (whole-pipeline runs: multi-process, Ray, the README walkthrough, every
# config's hash...), `make test-slow` runs only those; `.ci/run` runs both.
test: lint
	JAX_PLATFORMS=cpu $(PY) -m pytest -q -n auto --dist=loadfile --durations=30 -m "not slow"

test-slow: $(VENV)/.installed-test
	JAX_PLATFORMS=cpu $(PY) -m pytest -q -n auto --dist=loadfile --durations=30 -m slow

bench: $(VENV)/.installed-test
	$(PY) -m pip install -q torch==2.13.0
	$(PY) experiments/benchmarks/run_all.py

# On a GPU machine (< 8 min): installs jax[cuda12] and a CUDA torch if missing,
# writes experiments/benchmarks/RESULTS_GPU.md; stops with one line without a GPU.
bench-gpu: $(VENV)/.installed
	$(PY) experiments/benchmarks/gpu.py

# Resumable: rerunning reuses every finished run in $(MINI_WORKDIR).
reproduce-mini: $(VENV)/.installed
	$(PY) -m jaxprune.data prepare
	JAX_PLATFORMS=cpu $(PY) -m jaxprune.reproduce --suite=configs/mini \
		--workdir=$(MINI_WORKDIR) --out=$(MINI_OUT)

# Dynamical Isometry Tables 3 and 7 in full (90- and 900-epoch rows, 5 seeds) on
# the offline Fashion-MNIST: many hours on a CPU, resumable. Run it unattended:
#   nohup make reproduce-di-long > di_long.log 2>&1 &
DI_WORKDIR ?= workdirs/di_long
reproduce-di-long: $(VENV)/.installed
	$(PY) -m jaxprune.data prepare
	for t in table3 table7; do \
	  JAX_PLATFORMS=cpu $(PY) -m jaxprune.sweeps \
	    --config=configs/wang2021_di/$$t.py:fashion_mnist --workdir=$(DI_WORKDIR)/$$t && \
	  $(PY) -m jaxprune.report --results=$(DI_WORKDIR)/$$t/results.jsonl \
	    --out=$(DI_WORKDIR)/$$t/report --paper_config=configs/wang2021_di/$$t.py || exit 1; \
	done

# The full-settings CPU suite (configs/cpu_full: hours) on machines that do
# not keep their disks: restore the committed record (finished runs, and the
# newest checkpoints of unfinished ones), run what is left (resumable), and
# save the record before the machine goes:
#   nohup make long-runs > long_runs.log 2>&1 &   ...   make long-runs-save
# It also saves the record every LONG_SAVE_EVERY seconds while it runs (and at
# the end), so a session cut off mid-run still has every finished row, and
# every unfinished run's last checkpoint, to commit. The report is
# experiments/results/cpu_full/REPORT.md.
LONG_WORKDIR ?= workdirs/cpu_full
LONG_RECORD ?= experiments/results/cpu_full/record
LONG_SAVE_EVERY ?= 900
long-runs: $(VENV)/.installed
	$(PY) -m jaxprune.data prepare
	if [ -d $(LONG_RECORD) ]; then $(PY) -m jaxprune.results.record restore $(LONG_RECORD) $(LONG_WORKDIR); fi
	( while sleep $(LONG_SAVE_EVERY); do \
	    $(PY) -m jaxprune.results.record save --inflight $(LONG_WORKDIR) $(LONG_RECORD); done ) & \
	saver=$$!; trap 'kill $$saver 2>/dev/null' EXIT INT TERM; \
	JAX_PLATFORMS=cpu $(PY) -m jaxprune.reproduce --suite=configs/cpu_full \
		--workdir=$(LONG_WORKDIR) --out=experiments/results/cpu_full; \
	status=$$?; kill $$saver 2>/dev/null; \
	$(PY) -m jaxprune.results.record save --inflight $(LONG_WORKDIR) $(LONG_RECORD); exit $$status

# The suite's DI tables (hours of 900-epoch runs) on this CPU as SHARDS sweep
# processes, each pinned to one core and single-threaded (experiments/shards.sh,
# PIN=1: about 1.6x the run-epochs per second of one two-threaded process for
# these small nets), one SHARD_SWEEPS entry after the other, saving the
# record as long-runs does; then the report from the rows so far
# (--report_only). Same workdir, record and points as long-runs:
#   nohup make long-runs-shards > long_runs.log 2>&1 &   ...   make long-runs-save
# An entry is an experiment of configs/cpu_full/wang2021_di.py with its
# arguments, e.g. SHARD_SWEEPS=table7,nets=lenet5_linear+lenet5_relu.
SHARDS ?= 2
SHARD_SWEEPS ?= table3 table7
# Runs per group: 5 splits each setting's 10 points (two LRs x 5 seeds) into
# two groups that the two shards take side by side, so both cores stay busy
# to the end (groups of 10 left one shard with two settings, the other with
# one). In-flight runs resume from their own checkpoints in any grouping.
SHARD_GROUP_RUNS ?= 5
long-runs-shards: $(VENV)/.installed
	$(PY) -m jaxprune.data prepare
	if [ -d $(LONG_RECORD) ]; then $(PY) -m jaxprune.results.record restore $(LONG_RECORD) $(LONG_WORKDIR); fi
	( while sleep $(LONG_SAVE_EVERY); do \
	    $(PY) -m jaxprune.results.record save --inflight $(LONG_WORKDIR) $(LONG_RECORD); done ) & \
	saver=$$!; trap 'kill $$saver 2>/dev/null' EXIT INT TERM; status=0; \
	for sweep in $(SHARD_SWEEPS); do \
	  PY=$(PY) PIN=1 bash experiments/shards.sh configs/cpu_full/wang2021_di.py:$$sweep \
	    $(LONG_WORKDIR)/wang2021_di/$${sweep%%,*} $(SHARDS) --group_runs=$(SHARD_GROUP_RUNS) \
	    --config.cache_dir=$(abspath $(LONG_WORKDIR))/cache || status=1; \
	done; \
	kill $$saver 2>/dev/null; \
	$(PY) -m jaxprune.results.record save --inflight $(LONG_WORKDIR) $(LONG_RECORD); \
	JAX_PLATFORMS=cpu $(PY) -m jaxprune.reproduce --suite=configs/cpu_full \
		--workdir=$(LONG_WORKDIR) --out=experiments/results/cpu_full --report_only; \
	exit $$status

# DI Table 7 of that suite on one GPU, as GPU_SHARDS sweep processes side by
# side (LeNet-5 rows are hours on a CPU); same workdir and record as long-runs.
# GPU_LIMIT: seconds each shard may run (empty: no limit); GPU_PY: a Python
# with jaxprune's dependencies and a CUDA jax (default: the venv's);
# GPU_GROUP_RUNS: runs per vmapped group (small nets: more runs per step);
# GPU_NETS: only these nets' points ('+'-separated, e.g.
# lenet5_linear+lenet5_relu, while this CPU runs MLP-7-ReLU's).
GPU_SHARDS ?= 6
GPU_GROUP_RUNS ?= 10
GPU_LIMIT ?=
GPU_PY ?= $(PY)
GPU_NETS ?=
long-runs-gpu:
	$(GPU_PY) -m jaxprune.data prepare
	if [ -d $(LONG_RECORD) ]; then $(GPU_PY) -m jaxprune.results.record restore $(LONG_RECORD) $(LONG_WORKDIR); fi
	PY=$(GPU_PY) LIMIT=$(GPU_LIMIT) bash experiments/shards.sh \
		configs/cpu_full/wang2021_di.py:table7$(if $(GPU_NETS),$(comma)nets=$(GPU_NETS)) \
		$(LONG_WORKDIR)/wang2021_di/table7 \
		$(GPU_SHARDS) --group_runs=$(GPU_GROUP_RUNS) --config.cache_dir=$(abspath $(LONG_WORKDIR))/cache; \
	status=$$?; $(GPU_PY) -m jaxprune.results.record save --inflight $(LONG_WORKDIR) $(LONG_RECORD); exit $$status

long-runs-save: $(VENV)/.installed
	$(PY) -m jaxprune.results.record save --inflight $(LONG_WORKDIR) $(LONG_RECORD)

clean:
	rm -rf $(VENV) workdirs .pytest_cache .ruff_cache
