#!/bin/bash
# Runs one sweep as SHARDS processes side by side on one accelerator.
#
# Small nets (MLP-7, LeNet-5) leave a GPU mostly idle, even as vmapped groups
# of 10 runs: six shards of DI Table 7 kept an H200 about 95 % busy. Each
# shard is `python -m jaxprune.sweeps --shard=i/SHARDS` on the same workdir
# (rows are appended under a file lock; shared dense phases are trained once,
# under the cache's lock), so an interrupted call is resumed by calling again.
#
#   experiments/gpu_shards.sh CONFIG[:ARG] SWEEP_WORKDIR SHARDS [sweep flags...]
#
# Environment: PY (python, default python3), LIMIT (seconds each shard may run,
# default: no limit), LOGS (directory for shard<i>.log, default SWEEP_WORKDIR).
# `make long-runs-gpu` runs DI Table 7 of the cpu_full suite this way.
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
start=$(date +%s)
pids=()
for ((i = 0; i < shards; i++)); do
  # No preallocation: the shards share the device's memory.
  XLA_PYTHON_CLIENT_PREALLOCATE=false "${limit[@]}" "$PY" -m jaxprune.sweeps \
    --config="$config" --workdir="$workdir" --shard="$i/$shards" \
    --config.progress=False "$@" >"$LOGS/shard$i.log" 2>&1 &
  pids+=($!)
  sleep 2 # Staggered: the first shard takes the shared dense phases' locks.
done
status=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  rc=$?
  echo "[gpu_shards] shard $i/$shards exit $rc (log: $LOGS/shard$i.log)"
  [ $rc -ne 0 ] && status=$rc
done
rows=$(wc -l <"$workdir/results.jsonl" 2>/dev/null || echo 0)
echo "[gpu_shards] $rows rows in $workdir/results.jsonl after $(($(date +%s) - start)) s"
exit $status
