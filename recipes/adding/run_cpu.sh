#!/usr/bin/env bash
# The CPU measurements of docs/REPRODUCTION.md: adding problem, T in {100, 500, 1000}, indrnn / irnn / lstm,
# each under recipes/adding/cpu_budget.yaml, JOBS runs at a time, one torch thread each, at low priority.
# Each run leaves exp/adding/T<T>/<model>/{config.yaml,checkpoints/,logs/,metrics.json,train.log}.
# Usage: recipes/adding/run_cpu.sh [JOBS] [LENGTHS] [MODELS]   e.g. recipes/adding/run_cpu.sh 2 "100 500" "indrnn lstm"
set -euo pipefail
JOBS=${1:-2}
LENGTHS=${2:-"100 500 1000"}
MODELS=${3:-"indrnn irnn lstm"}
for T in $LENGTHS; do for m in $MODELS; do echo "$T $m"; done; done |
  xargs -P "$JOBS" -L 1 bash -c '
    dir=exp/adding/T$0/$1; mkdir -p "$dir"
    OMP_NUM_THREADS=1 nice -n 10 recur fit --config recipes/adding/T$0_$1.yaml \
      --config recipes/adding/cpu_budget.yaml --trainer.enable_progress_bar=false > "$dir/train.log" 2>&1 \
      && echo "done T=$0 $1" || echo "FAILED T=$0 $1 (see $dir/train.log)"'
