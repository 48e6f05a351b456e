#!/bin/bash
# Runs one sweep as SHARDS processes side by side, on one accelerator or on
# the cores of a CPU.
#
# Small nets (MLP-7, LeNet-5) leave a GPU mostly idle, even as vmapped groups
# of 10 runs: six shards of DI Table 7 kept an H200 about 95 % busy. On a CPU,
# XLA's two-thread convolutions of a pruned LeNet-5 are too small to keep both
# cores busy (a group of 5 runs: 4.3 s per epoch, 1.15 run-epochs/s on 2
# cores), while two shards, each pinned to one core with single-threaded
# Eigen (PIN=1), did 5 runs at 5.3 s and 10 runs at 11.2 s per epoch side by
# side: 1.83 run-epochs/s. Each shard is
# `python -m jaxprune.sweeps --shard=i/SHARDS` on the same workdir (rows are
# appended under a file lock; shared dense phases are trained once, under the
# cache's lock), so an interrupted call is resumed by calling again.
#
#   experiments/shards.sh CONFIG[:ARG] SWEEP_WORKDIR SHARDS [sweep flags...]
#
# Environment: PY (python, default python3), LIMIT (seconds each shard may run,
# default: no limit), LOGS (directory for shard<i>.log, default SWEEP_WORKDIR),
# PIN=1 (CPU: shard i runs single-threaded on the i-th allowed core, mod
# their count).
# `make long-runs-gpu` and `make long-runs-shards` run DI Table 7 of the
# cpu_full suite this way.
set -u
if [ $# -lt 3 ]; then
  echo "usage: $0 CONFIG[:ARG] SWEEP_WORKDIR SHARDS [sweep flags...]" >&2
  exit 2
fi
config=$1 workdir=$2 shards=$3
shift 3
PY=${PY:-python3}
LOGS=${LOGS:-$workdir}
mkdir -p "$workdir" "$LOGS"
limit=()
if [ -n "${LIMIT:-}" ]; then limit=(timeout "$LIMIT"); fi
# The cores this process may use (a container's may not start at 0).
read -r -a cores <<<"$("$PY" -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
start=$(date +%s)
pids=()
for ((i = 0; i < shards; i++)); do
  pin=()
  if [ "${PIN:-0}" = 1 ]; then
    pin=(env JAX_PLATFORMS=cpu "XLA_FLAGS=${XLA_FLAGS:-} --xla_cpu_multi_thread_eigen=false"
      taskset -c "${cores[$((i % ${#cores[@]}))]}")
  fi
  # No preallocation: the shards share the device's memory.
  XLA_PYTHON_CLIENT_PREALLOCATE=false "${limit[@]}" "${pin[@]}" "$PY" -m jaxprune.sweeps \
    --config="$config" --workdir="$workdir" --shard="$i/$shards" \
    --config.progress=False "$@" >"$LOGS/shard$i.log" 2>&1 &
  pids+=($!)
  sleep 2 # Staggered: the first shard takes the shared dense phases' locks.
done
status=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  rc=$?
  echo "[shards] shard $i/$shards exit $rc (log: $LOGS/shard$i.log)"
  [ $rc -ne 0 ] && status=$rc
done
rows=0
[ -f "$workdir/results.jsonl" ] && rows=$(wc -l <"$workdir/results.jsonl")
echo "[shards] $rows rows in $workdir/results.jsonl after $(($(date +%s) - start)) s"
exit $status
