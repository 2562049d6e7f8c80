#!/bin/sh
# cuda_refused_test.sh — ctest bench.cuda_refused: on a machine without an NVIDIA GPU,
# scripts/bench.sh --device cuda (and TV_BENCH_DEVICE=cuda) must exit 2 with a message naming the
# missing GPU before doing any work (no models exported, no report written). Skips (77) with a GPU.
# Usage: bench/cuda_refused_test.sh BUILD_DIR
set -u
if nvidia-smi -L > /dev/null 2>&1; then echo "a GPU is present: nothing to test"; exit 77; fi
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_cuda.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
for how in flag env; do
  if [ $how = flag ]; then
    TV_BENCH_MODELS=$tmp/models "$src/scripts/bench.sh" --smoke --device cuda --out "$tmp/out.md" "$1" > "$tmp/log" 2>&1
  else
    TV_BENCH_DEVICE=cuda TV_BENCH_MODELS=$tmp/models "$src/scripts/bench.sh" --smoke --out "$tmp/out.md" "$1" > "$tmp/log" 2>&1
  fi
  rc=$?
  cat "$tmp/log"
  [ $rc = 2 ] || { echo "FAIL ($how): exit $rc, expected 2"; fail=1; }
  grep -q 'no NVIDIA GPU on this machine.*nothing was run' "$tmp/log" || { echo "FAIL ($how): no clear message"; fail=1; }
  [ ! -e "$tmp/out.md" ] && [ ! -e "$tmp/models" ] || { echo "FAIL ($how): work was done before refusing"; fail=1; }
done
exit $fail
