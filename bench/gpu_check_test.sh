#!/bin/sh
# gpu_check_test.sh — ctest bench.gpu_check_cpu_path: scripts/gpu-check.sh --build BUILD_DIR on this
# machine. Without a GPU it must exit 0, run every step on the CPU, report the CUDA tests as skipped
# with the reason, and print the summary with the benchmark's table 1 (--device cpu, 2 images).
# With a GPU it must pass its checks on the GPU (2 images).
# Usage: bench/gpu_check_test.sh BUILD_DIR PYTHON
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tv_gpu_check_test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$src/scripts/gpu-check.sh" --build "$1" --python "$2" --images 2 --out "$tmp/out" > "$tmp/stdout" 2> "$tmp/stderr"
rc=$?
cat "$tmp/stdout"; cat "$tmp/stderr" >&2
[ $rc = 0 ] || { echo "FAIL: gpu-check.sh exited $rc"; exit 1; }
summary=$tmp/out/gpu-check.md
fail=0
check() { grep -q -- "$1" "$summary" || { echo "FAIL: the summary lacks '$1'"; fail=1; }; }
check '| check | result | details |'
check '## 1. Extraction on'
check 'resnet50'
check 'vit_b_16'
if nvidia-smi -L > /dev/null 2>&1; then
  check 'tests/cuda_test .* | ok | [1-9][0-9]* passed, 0 skipped, 0 failed'
else
  check 'CPU dry run'
  check 'tests/cuda_test .* | ok | 0 passed, 4 skipped, 0 failed; skipped because: .*no CUDA GPU visible'
  check 'cuda_test.sh extract | skipped | SKIP: no CUDA GPU visible to tv-extract'
  check 'cuda_test.sh refused | ok | OK: CUDA refused'
fi
exit $fail
