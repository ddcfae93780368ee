#!/usr/bin/env bash
# Stop an ES run once its metrics.csv reaches a budget in env steps (the trainer's --generations counts
# generations, whose env steps vary with early falls). The checkpoint is written atomically each
# generation, so the run stops at the first generation at or past the budget and resumes from there.
#   scripts/stop_at_steps.sh RUN_DIR ENV_STEPS PID
set -euo pipefail
if [[ $# -ne 3 || ! "$2" =~ ^[0-9]+$ || ! "$3" =~ ^[0-9]+$ ]]; then
    echo "usage: scripts/stop_at_steps.sh RUN_DIR ENV_STEPS PID (ENV_STEPS and PID are positive integers)" >&2; exit 2
fi
run_dir=$1; budget=$2; pid=$3
while kill -0 "$pid" 2>/dev/null; do
    steps=$(tail -n 1 "$run_dir/metrics.csv" 2>/dev/null | cut -d, -f2 || true)  # no file before the first generation
    if [[ "$steps" =~ ^[0-9]+$ ]] && (( steps >= budget )); then
        # the checkpoint of that generation is saved right after its metrics row: wait for it
        while kill -0 "$pid" 2>/dev/null && [[ "$run_dir/checkpoint.pt" -ot "$run_dir/metrics.csv" ]]; do sleep 0.2; done
        kill "$pid" 2>/dev/null || true; echo "stopped $run_dir at $steps env steps"; exit 0
    fi
    sleep 5
done
