#!/bin/sh
# writer_bench.sh — raw disk speed (dd, fdatasync) vs each FeatureWriter backend writing SIZE MiB
# (default 2048) of float32 features into DIR; prints MB/s and RSS. Reports, asserts nothing.
# Usage: bench/writer_bench.sh BUILD_DIR [SIZE_MIB] [DIR]
#   BUILD_DIR must hold bench/writer_bench (configure with -DTHINGSVISION_BUILD_BENCH=ON).
set -eu
build=$1
size=${2:-2048}
dir=${3:-$(mktemp -d "${TMPDIR:-/tmp}/writer_bench.XXXXXX")}
mkdir -p "$dir"
echo "== dd: ${size} MiB, bs=4M, conv=fdatasync into $dir"
dd if=/dev/zero of="$dir/dd.bin" bs=4M count=$((size / 4)) conv=fdatasync 2>&1 | tail -n 1
rm -f "$dir/dd.bin"
for format in npy hdf5 mat txt; do
  s=$size
  [ "$format" = txt ] && s=$((size / 16))  # text is ~5x larger and CPU-bound; a smaller sample
  rm -rf "$dir/$format"
  "$build/bench/writer_bench" "$format" "$dir/$format" "$s"
  rm -rf "$dir/$format"
done
