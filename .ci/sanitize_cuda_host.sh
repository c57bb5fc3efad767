#!/usr/bin/env bash
# The CUDA kernels' source under AddressSanitizer and UBSan: rebuilds
# alexnet_fast._cuda_host in place with -fsanitize=address,undefined
# -fno-sanitize-recover=all (setup.py, ALEXNET_FAST_SANITIZE=1) and runs every
# cuda_host test of the op suites, the exhaustive grid included, with the sanitizer
# runtimes preloaded into Python. An out-of-bounds read or write, or undefined
# behaviour, in the device code then aborts the run. Leaves the sanitized extension in
# place: `pip install --no-build-isolation -e .` builds the fast one again.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
ALEXNET_FAST_SANITIZE=1 ALEXNET_FAST_BUILD=cuda_host python setup.py -q build_ext --inplace
library=$(realpath alexnet_fast/_cuda_host*.so)
# grep without -q reads all of nm's output (with -q, nm dies of SIGPIPE and pipefail fails).
nm -D "$library" | grep __asan_report > /dev/null || { echo "sanitize_cuda_host: $library is not sanitized" >&2; exit 1; }
echo "sanitize_cuda_host: sanitized build $(( $(date +%s) - start )) s"

sanitized() {
  # Leaks are not the question (Python's own allocations would be reported).
  LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" \
    ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$@"
}
loaded=$(sanitized python -c "import os, alexnet_fast._cuda_host as m; print(os.path.realpath(m.__file__))")
[ "$loaded" = "$library" ] || { echo "sanitize_cuda_host: Python loads $loaded, not $library" >&2; exit 1; }
sanitized pytest -q -p no:cacheprovider --slow -k cuda_host \
  tests/test_cuda_host.py tests/test_relu_lrn.py tests/test_max_pool2d.py tests/test_relu_lrn_max_pool2d.py \
  tests/test_pool_arguments.py tests/test_lrn_edge_values.py tests/test_gpu_check.py
echo "sanitize_cuda_host: done in $(( $(date +%s) - start )) s"
