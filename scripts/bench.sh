#!/bin/bash
# bench.sh — runs the bench/ suite and writes bench/RESULTS.md: extraction (tv-extract end to end,
# the forward-only limit, THINGSvision-style PyTorch), decode+preprocess, writers vs dd, RSA vs
# numpy/scipy, peak RSS of tv-extract against image count. Reports numbers; asserts only that
# every program ran and that tv-extract --optimize writes the same features (1e-4 relative).
# Usage: scripts/bench.sh [--smoke] [--out FILE] [BUILD_DIR]
#   BUILD_DIR (default: build) configured with -DTHINGSVISION_BUILD_BENCH=ON, with tools/tv-extract
#   and bench/{forward_bench,decode_bench,rsa_bench,writer_bench} built.
#   --smoke   small sizes, about 2-3 minutes (ctest -L bench runs it into a temporary file)
#   --out     where to write the report (default: bench/RESULTS.md of the source tree)
# Models are exported once into $TV_BENCH_MODELS (default BUILD_DIR/bench/models) with
# models/export.py --weights random --seed 0. LibTorch runs $TV_BENCH_THREADS threads (default: all
# CPUs) in C++ and Python alike, with OPENBLAS_NUM_THREADS=1. $TV_BENCH_NOTE, if set, is printed
# under the machine table (e.g. "The machine was shared with other jobs").
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
smoke=0
out=$src/bench/RESULTS.md
build=
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) smoke=1 ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench.sh: unknown option '$1'" >&2; exit 2 ;;
    *) build=$1 ;;
  esac
  shift
done
build=$(cd "${build:-$src/build}" && pwd)
py=/usr/bin/python3
for program in tools/tv-extract bench/forward_bench bench/decode_bench bench/rsa_bench bench/writer_bench; do
  if [ ! -x "$build/$program" ]; then
    echo "bench.sh: '$build/$program' not found (configure with -DTHINGSVISION_BUILD_BENCH=ON and build it)" >&2
    exit 2
  fi
done

threads=${TV_BENCH_THREADS:-$(nproc)}
export OPENBLAS_NUM_THREADS=1
models=${TV_BENCH_MODELS:-$build/bench/models}
work=$(mktemp -d "${TMPDIR:-/tmp}/tv_bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
report=$work/report.md

if [ $smoke = 1 ]; then
  n_images=8; fwd_batch=4; seconds=0.5; rsa_n=300; rsa_d=128; writer_mib=32; rss_counts="8 16 32"
  cases="resnet18:layer2 resnet18:avgpool vgg16:features.30"
else
  n_images=32; fwd_batch=8; seconds=1; rsa_n=2000; rsa_d=1024; writer_mib=256; rss_counts="50 200 400"
  cases="resnet18:layer2 resnet18:avgpool vgg16:features.30 vit_b_16:encoder.ln"
fi

say() { echo "bench.sh: $*" >&2; }
md() { printf '%s\n' "$@" >> "$report"; }
# json FILE KEY: the KEY of the last JSON line of FILE
json() { "$py" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2"; }
ratio() { "$py" -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.2f}")' "$1" "$2"; }
fmt1() { "$py" -c 'import sys; print(f"{float(sys.argv[1]):.1f}")' "$1"; }

# --- images: N files copied under new names from examples/images + OpenCV's sample JPEGs -------------
make_images() {  # make_images DIR N
  mkdir -p "$1"
  local sources=("$src"/examples/images/*.jpg /usr/share/doc/opencv-doc/examples/data/*.jpg)
  local i=0
  while [ $i -lt "$2" ]; do
    cp "${sources[$((i % ${#sources[@]}))]}" "$(printf '%s/img_%05d.jpg' "$1" $i)"
    i=$((i + 1))
  done
}
make_images "$work/images" $n_images

# --- models ----------------------------------------------------------------------------------------
mkdir -p "$models"
for arch in $(for c in $cases; do echo "${c%%:*}"; done | sort -u); do
  if [ ! -f "$models/$arch.pt" ]; then
    say "exporting $arch (random weights, seed 0) into $models"
    "$py" "$src/models/export.py" --arch "$arch" --weights random --seed 0 --out "$models" > /dev/null
  fi
done

# --- machine ---------------------------------------------------------------------------------------
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
blas=$(ldd "$build/tools/tv-extract" | grep -oE 'lib(openblas[a-z0-9_]*|blis[a-z0-9_]*|mkl_rt|blas)\.so[.0-9]*' | sort -u | tr '\n' ' ')
blas_alt=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || true)
md "# bench/ results" "" \
  "Written by \`scripts/bench.sh$([ $smoke = 1 ] && echo ' --smoke')\` on $(date -u '+%Y-%m-%d %H:%M UTC'). Reported, not asserted." "" \
  "| | |" "|---|---|" \
  "| CPU | ${cpu:-unknown} |" \
  "| cores (nproc / hardware) | $(nproc) / $(nproc --all) |" \
  "| BLAS | ${blas:-none linked directly}; libblas.so.3 → ${blas_alt:-?} |" \
  "| threads | LibTorch $threads in C++ and Python (torch.set_num_threads), OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS |" \
  "| card | ${card:-none (CPU only)} |" \
  "| load average at start | $(cut -d' ' -f1-3 /proc/loadavg) |" ""
[ -n "${TV_BENCH_NOTE:-}" ] && md "$TV_BENCH_NOTE" ""

# --- (1) extraction ----------------------------------------------------------------------------------
say "extraction: $cases, $n_images images, $threads threads"
md "## 1. Extraction, images/s" "" \
  "$n_images JPEGs (examples/images + OpenCV samples under new names), batch 32 (forward limit: $fwd_batch), $threads threads everywhere." \
  "*tv-extract*: end to end (decode, preprocess, forward, .npy write; from manifest.json's seconds, model load" \
  "included). *forward limit*: bench/forward_bench, Model::extract (graph cut at the module) and" \
  "Model::forward (full network) on a batch already in memory. *Python*: bench/python_extract.py" \
  "(PIL + torchvision transforms + forward hook, same weights; model load excluded). Ratios are from" \
  "this run." "" \
  "| model | module | optimize | tv-extract | extract limit | forward limit | Python | tv-extract / Python |" \
  "|---|---|---|---:|---:|---:|---:|---:|"
for c in $cases; do
  arch=${c%%:*}; module=${c#*:}
  "$py" "$src/bench/python_extract.py" --arch "$arch" --pt "$models/$arch.pt" --module "$module" \
    --images "$work/images" --threads "$threads" > "$work/python.json"
  python_rate=$(json "$work/python.json" images_per_second)
  for optimize in 0 1; do
    flag=; [ $optimize = 1 ] && flag=--optimize
    rm -rf "$work/out_$optimize"
    "$build/tools/tv-extract" --model "$models/$arch.pt" --module "$module" --images "$work/images" \
      --out "$work/out_$optimize" --threads "$threads" --quiet $flag
    e2e_seconds=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$work/out_$optimize/manifest.json")
    if [ $optimize = 1 ]; then  # --optimize must not change the features
      "$py" -c 'import sys, numpy as np
a, b = (np.load(f"{d}/{sys.argv[3]}/features.npy") for d in sys.argv[1:3])
err = float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))
sys.exit(f"bench.sh: --optimize changed {sys.argv[3]} features (max rel. difference {err:.1e})" if a.shape != b.shape or err > 1e-4 else 0)' \
        "$work/out_0" "$work/out_1" "$module"
    fi
    e2e=$("$py" -c 'import sys; print(int(sys.argv[1]) / float(sys.argv[2]))' $n_images "$e2e_seconds")
    "$build/bench/forward_bench" "$models/$arch.pt" "$module" $fwd_batch "$threads" $seconds $optimize > "$work/forward.json"
    limit_extract=$(fmt1 "$(json "$work/forward.json" extract_images_per_second)")
    limit_forward=$(fmt1 "$(json "$work/forward.json" forward_images_per_second)")
    md "| $arch | $module | $([ $optimize = 1 ] && echo on || echo off) | $(fmt1 "$e2e") | $limit_extract | $limit_forward | $(fmt1 "$python_rate") | $(ratio "$e2e" "$python_rate") |"
  done
done
md ""

# --- (2) decode + preprocess ---------------------------------------------------------------------------
say "decode + preprocess"
decode_args=()
[ $smoke = 1 ] && decode_args=(--benchmark_filter='jpeg_thingsvision|DecodeOnly')
"$build/bench/decode_bench" "${decode_args[@]}" --benchmark_format=json > "$work/decode.json" 2> /dev/null
"$py" "$src/bench/decode_python.py" --seconds $seconds > "$work/decode_python.txt"
md "## 2. Decode + preprocess, images/s on one thread" "" \
  "bench/decode_bench (CPU time of its thread) vs bench/decode_python.py (PIL + torchvision, one torch" \
  "thread; CPU time and wall), on /usr/share/doc/opencv-doc/examples/data." "" \
  "| pipeline | C++ | PIL + torchvision (CPU) | PIL + torchvision (wall) | C++ / Python (CPU) |" \
  "|---|---:|---:|---:|---:|"
"$py" - "$work/decode.json" "$work/decode_python.txt" >> "$report" <<'EOF'
import json, re, sys
ours = {}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    name = b["name"].split("/")
    ours[name[1] if name[0] == "run" else "decode_only (jpeg)"] = b["images_per_s"]
for line in open(sys.argv[2]):
    m = re.match(r"python (.+): ([0-9.]+) images/s \(wall\), ([0-9.]+) images/s \(CPU time\)", line)
    if m and m.group(1) in ours:
        c = ours[m.group(1)]
        print(f"| {m.group(1)} | {c:.1f} | {float(m.group(3)):.1f} | {float(m.group(2)):.1f} | {c / float(m.group(3)):.2f} |")
EOF
md ""

# --- (3) writers ---------------------------------------------------------------------------------------
say "writers: $writer_mib MiB"
mkdir -p "$work/writer"
"$src/bench/writer_bench.sh" "$build" $writer_mib "$work/writer" > "$work/writer.txt" 2>&1
md "## 3. Feature writers, MB/s" "" \
  "bench/writer_bench.sh: $writer_mib MiB of float32 rows (txt: 1/16 of it) into $(df --output=target "$work" | tail -n 1) vs dd" \
  "(bs=4M, conv=fdatasync) on the same disk." "" \
  "| writer | MB/s (append + commit) | append MB/s | commit MB/s | peak RSS |" "|---|---:|---:|---:|---:|"
"$py" - "$work/writer.txt" >> "$report" <<'EOF'
import re, sys
for line in open(sys.argv[1]):
    m = re.search(r"copied, [0-9.]+ s, ([0-9.]+ [kMG]?B/s)", line)
    if m:
        print(f"| dd | {m.group(1)} | | | |")
    m = re.match(r"(\w+) +rows=\d+ size=(\d+)MB append=([0-9.]+)MB/s commit=([0-9.]+)MB/s total=([0-9.]+)MB/s .*peak_rss=(\d+)MiB", line)
    if m:
        print(f"| {m.group(1)} ({m.group(2)} MB) | {m.group(5)} | {m.group(3)} | {m.group(4)} | {m.group(6)} MiB |")
EOF
md ""

# --- (4) RSA -------------------------------------------------------------------------------------------
say "RSA: N=$rsa_n D=$rsa_d"
"$build/bench/rsa_bench" $rsa_n $rsa_d "$threads" > "$work/rsa.txt" 2>&1
md "## 4. RSA vs numpy/scipy, seconds" "" \
  "bench/rsa_bench N=$rsa_n D=$rsa_d, $threads threads (numpy: $(grep -m1 '^numpy config' "$work/rsa.txt" | sed 's/^numpy config: *//' || true))." \
  "$(sed -n 2p "$work/rsa.txt")." "" \
  "| operation | C++ s | numpy/scipy s | speedup | C++ mem/RDM | numpy mem/RDM | agreement (rel.) |" \
  "|---|---:|---:|---:|---:|---:|---:|"
awk '/^operation/ {t = 1; next} t && NF == 7 {printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7}' \
  "$work/rsa.txt" >> "$report"
md "" "$(grep '^(mem/RDM' "$work/rsa.txt" || true)" ""

# --- (5) peak RSS against image count ----------------------------------------------------------------
say "peak RSS: $rss_counts images"
md "## 5. Peak RSS of tv-extract against image count" "" \
  "resnet18, --module layer2 (the largest output of the suite's ResNet cases), batch 32, $threads threads," \
  "npy; /usr/bin/time -v's maximum resident set size. Flat = memory does not grow with the data set." "" \
  "| images | features written | peak RSS | seconds |" "|---:|---:|---:|---:|"
for n in $rss_counts; do
  rm -rf "$work/rss_images" "$work/out"
  make_images "$work/rss_images" "$n"
  /usr/bin/time -v "$build/tools/tv-extract" --model "$models/resnet18.pt" --module layer2 \
    --images "$work/rss_images" --out "$work/out" --threads "$threads" --quiet 2> "$work/time.txt"
  rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
  size=$(du -sm "$work/out" | cut -f1)
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time.txt")
  md "| $n | $size MB | $((rss_kb / 1024)) MiB | $wall |"
done
md ""

md "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
mkdir -p "$(dirname "$out")"
cp "$report" "$out"
say "wrote $out"
