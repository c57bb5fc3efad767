#!/usr/bin/env bash
# The GPU check: one command for a machine with a CUDA GPU, torch, nvcc and no
# network, run from the repository root:
#
#   bash benches/gpu_check.sh OUT_DIR            # the whole check
#   bash benches/gpu_check.sh --dry-run OUT_DIR  # the plan and its budget, nothing run
#
# In order, each step under its own time limit, inside BUDGET_S seconds in all
# (8 minutes on an H100/H200; each step is skipped, and said so, when the time
# left is shorter than its limit):
#   1. build for the detected GPU architecture only, MAX_JOBS = the core count;
#   2. the CUDA and Triton tests (every test marked `cuda`: the cuda and
#      triton backends on the GPU), over 8 processes when pytest-xdist is there;
#   3. compute-sanitizer memcheck and racecheck on small cases of every kernel,
#      if compute-sanitizer is there;
#   4. benchmarks at batch 128, float32 and bfloat16: the ops, the copy
#      bandwidth and the model step (pytest-benchmark JSON, without the
#      torch.compile providers, whose compiles would not fit), then `alexnet-fast
#      bench --json` of the ops for each dtype, with torch.compile in float32.
# Everything it writes lands in OUT_DIR, at most 8 files (the device tool's
# limit): environment.txt, build.log, tests.log, sanitizer.log,
# benchmarks.json, bench-float32.json, bench-bfloat16.json, summary.txt.
# Exit status: 0 when every step that ran passed, 1 otherwise, 2 for bad usage.
set -uo pipefail

BUDGET_S=${GPU_CHECK_BUDGET_S:-480}
# name:limit_s, in the order they run
STEPS=(environment:10 build:130 tests:120 sanitizer:50 benchmarks:80 bench_float32:50 bench_bfloat16:40)

usage() {
  echo "usage: bash benches/gpu_check.sh [--dry-run] OUT_DIR" >&2
  exit 2
}

DRY_RUN=0
OUT=""
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h|--help) usage ;;
    -*) echo "gpu_check: unknown option $arg" >&2; usage ;;
    *) [ -z "$OUT" ] || { echo "gpu_check: one OUT_DIR, got $OUT and $arg" >&2; usage; }; OUT=$arg ;;
  esac
done
[ -n "$OUT" ] || usage
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
total=0
for step in "${STEPS[@]}"; do total=$(( total + ${step#*:} )); done
if [ "$total" -gt "$BUDGET_S" ]; then
  echo "gpu_check: the steps' limits add up to ${total} s, over the budget of ${BUDGET_S} s" >&2
  exit 2
fi

if [ "$DRY_RUN" = 1 ]; then
  echo "gpu_check: dry run, budget ${BUDGET_S} s, steps' limits ${total} s, output in $OUT:"
  for step in "${STEPS[@]}"; do echo "  ${step%%:*} (at most ${step#*:} s)"; done
  exit 0
fi

if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_check: no CUDA GPU visible to torch ($PYTHON): this check needs one" >&2
  exit 1
fi
mkdir -p "$OUT"
START=$(date +%s)
FAILED=0
: > "$OUT/summary.txt"

# run_step NAME LIMIT_S LOG COMMAND...: runs COMMAND under its limit when the
# budget allows, appending its output to LOG and a line to summary.txt.
run_step() {
  local name=$1 limit=$2 log=$3
  shift 3
  local left=$(( BUDGET_S - ($(date +%s) - START) ))
  if [ "$left" -lt "$limit" ]; then
    echo "$name: skipped, ${left} s of the budget left, it may take ${limit} s" | tee -a "$OUT/summary.txt"
    return
  fi
  local began=$(date +%s) status=0
  echo "== $name ==" >> "$log"
  timeout "$limit" "$@" >> "$log" 2>&1 || status=$?
  local took=$(( $(date +%s) - began ))
  if [ "$status" = 0 ]; then
    echo "$name: ok (${took} s)" | tee -a "$OUT/summary.txt"
  else
    [ "$status" = 124 ] && status="timeout after ${limit} s"
    echo "$name: FAILED ($status, ${took} s; see $(basename "$log"))" | tee -a "$OUT/summary.txt"
    FAILED=1
  fi
}

limit_of() {
  local step
  for step in "${STEPS[@]}"; do [ "${step%%:*}" = "$1" ] && echo "${step#*:}"; done
}

ARCH=$("$PYTHON" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')
export TORCH_CUDA_ARCH_LIST=$ARCH MAX_JOBS=$(nproc) FORCE_CUDA=1 ALEXNET_FAST_CUDA_HOST=0 PYTHONUNBUFFERED=1

run_step environment "$(limit_of environment)" "$OUT/environment.txt" bash -c "
  date -u; uname -a; nvidia-smi; nvcc --version; command -v compute-sanitizer || echo 'no compute-sanitizer'
  '$PYTHON' -c 'import torch, triton; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"triton\", triton.__version__, \"gpu\", torch.cuda.get_device_name(), \"arch\", \"$ARCH\")'"

run_step build "$(limit_of build)" "$OUT/build.log" \
  "$PYTHON" -m pip install --no-build-isolation --no-deps --no-index -v -e .

PARALLEL=()
"$PYTHON" -c 'import xdist' 2>/dev/null && PARALLEL=(-n 8)
run_step tests "$(limit_of tests)" "$OUT/tests.log" \
  "$PYTHON" -m pytest -q -p no:cacheprovider tests -m cuda "${PARALLEL[@]}" --durations=15

if command -v compute-sanitizer > /dev/null; then
  run_step sanitizer "$(limit_of sanitizer)" "$OUT/sanitizer.log" bash -c "
    compute-sanitizer --tool memcheck --error-exitcode 1 '$PYTHON' benches/gpu_sanitize_cases.py &&
    compute-sanitizer --tool racecheck --error-exitcode 1 '$PYTHON' benches/gpu_sanitize_cases.py"
else
  echo "sanitizer: skipped, no compute-sanitizer on PATH" | tee -a "$OUT/summary.txt"
fi

export ALEXNET_FAST_BENCH_BATCH=128
run_step benchmarks "$(limit_of benchmarks)" "$OUT/summary.txt" \
  "$PYTHON" -m pytest -q -p no:cacheprovider benches --benchmark-only --benchmark-json "$OUT/benchmarks.json" \
  -k "not peer and not compile"
run_step bench_float32 "$(limit_of bench_float32)" "$OUT/summary.txt" \
  "$PYTHON" -m alexnet_fast bench --device cuda --dtype float32 --batch-size 128 --no-model --json "$OUT/bench-float32.json"
run_step bench_bfloat16 "$(limit_of bench_bfloat16)" "$OUT/summary.txt" \
  "$PYTHON" -m alexnet_fast bench --device cuda --dtype bfloat16 --batch-size 128 --no-model --no-compile \
  --json "$OUT/bench-bfloat16.json"

echo "gpu_check: $(( $(date +%s) - START )) s of ${BUDGET_S} s" | tee -a "$OUT/summary.txt"
exit $FAILED
