#!/bin/sh
# fuzz_readers.sh — builds the libFuzzer targets for the project's own parsers (npy, txt, MAT 5)
# with clang (-fsanitize=fuzzer,address,undefined) and runs each for SECONDS (default 60).
# Usage: scripts/fuzz_readers.sh [SECONDS] [WORKDIR]. Seeds come from tests/reference/storage_make.py.
# Not part of ctest. Exits non-zero if a target crashes (the reproducer stays in WORKDIR).
set -eu
seconds=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${2:-$root/build-fuzz}
mkdir -p "$work"
hdf5_inc=$(pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
hdf5_lib=$(pkg-config --libs hdf5 2>/dev/null || echo "-L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5")
flags="-std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
storage=$root/src/storage
srcs="$root/src/core/error.cpp $storage/feature_writer.cpp $storage/feature_reader.cpp $storage/writers/npy_writer.cpp
      $storage/writers/txt_writer.cpp $storage/writers/mat_writer.cpp $storage/writers/hdf5_writer.cpp"
# Seeds: files written by numpy, scipy, h5py, Octave.
if [ ! -d "$work/seeds" ]; then
  /usr/bin/python3 "$root/tests/reference/storage_make.py" "$work/seeds" >/dev/null 2>&1
fi
status=0
# The parsers are compiled once (fuzzer-no-link), then linked into each target.
objs=""
for src in $srcs; do
  obj=$work/$(basename "$src" .cpp).o
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ]; then
    clang++ $(echo "$flags" | sed 's/fuzzer,/fuzzer-no-link,/') -I"$root/include" -I"$root/src" $hdf5_inc \
      -c "$src" -o "$obj"
  fi
  objs="$objs $obj"
done
for target in npy txt mat5; do
  bin=$work/fuzz_$target
  clang++ $flags -I"$root/include" -I"$root/src" "$root/tests/storage/fuzz/fuzz_$target.cpp" $objs -o "$bin" \
    $hdf5_lib -lmatio -lfmt
  corpus=$work/corpus_$target
  mkdir -p "$corpus"
  case $target in
    npy) cp "$work"/seeds/*.npy "$corpus"/ ;;
    txt) cp "$work"/seeds/*.txt "$corpus"/ ;;
    mat5) cp "$work"/seeds/sp5*.mat "$work"/seeds/octave5.mat "$corpus"/ ;;
  esac
  echo "== fuzz_$target for ${seconds}s"
  if (cd "$work" && "$bin" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
        -print_final_stats=1 "$corpus" > "$work/fuzz_$target.log" 2>&1); then
    tail -n 6 "$work/fuzz_$target.log"
  else
    tail -n 30 "$work/fuzz_$target.log"
    echo "fuzz_$target FAILED (log: $work/fuzz_$target.log)"
    status=1
  fi
done
exit $status
