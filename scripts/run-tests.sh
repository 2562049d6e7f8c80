#!/usr/bin/env bash
# Quick start, command 2: install the Debian packages, build, and run the whole test suite with ctest,
# then the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer, then build the
# examples/ consumer project against the installed library and check its output.
#   scripts/run-tests.sh [--no-sanitizers]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
scripts/install-deps.sh --tests

echo "== build (warnings are errors)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTHINGSVISION_WERROR=ON \
  -DTHINGSVISION_BUILD_BENCH=ON >/dev/null
cmake --build build -j"$jobs"

echo "== tests"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 900

echo "== examples/ consumer against the installed library"
rm -rf build/install build/examples
cmake --install build --prefix "$PWD/build/install" >/dev/null
scripts/check-examples.sh build/install build

if [[ "${1:-}" != "--no-sanitizers" ]]; then
  echo "== unit tests under ASan + UBSan"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTHINGSVISION_WERROR=ON \
    -DTHINGSVISION_SANITIZE=ON -DTHINGSVISION_BUILD_TOOLS=OFF >/dev/null
  cmake --build build-asan -j"$jobs"
  # LibTorch's and OpenBLAS's global allocations are not freed at exit: leaks are not checked there.
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" -L "unit|fixture" --timeout 1800
fi
