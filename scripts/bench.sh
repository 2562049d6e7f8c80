#!/bin/bash
# bench.sh — runs the bench/ suite and writes bench/RESULTS.md (issue #9): the machine, then
# (1) extraction images/s: tv-extract end to end (model load excluded), the forward-only limit (the
#     same forward passes on tensors already in memory: bench/forward_bench) and THINGSvision-style
#     Python (bench/python_extract.py), default and optimize-toggled tv-extract, goals checked;
# (2) thread split (resnet18 avgpool: --threads, --decode-threads if tv-extract has it, Python);
# (3) decode+preprocess vs PIL; (4) writers vs dd; (5) RSA vs numpy/scipy; (6) peak RSS against
#     image count; (7) the whole process as `time` sees it, tv-extract against THINGSvision itself
#     (issue #19: fixed cost, ratios and peak RSS; TV_BENCH_WHOLE_CASES='ARCH:MODULE:IMAGES ...');
# (8) backends (issue #17): forward_bench on resnet18 (avgpool, layer2) as TorchScript (LibTorch) and
#     as a plain torch.onnx.export of the same weights through OpenCV DNN and ONNX Runtime (where the
#     build has it); not in the default set (--tables 8). Ratios, goals and "Reading" remarks are
#     computed (bench/report.py). Asserts only that every program ran and that neither the optimize
#     toggle nor the backend changes features (1e-4 relative).
# Usage: scripts/bench.sh [--smoke] [--out FILE] [--append] [--device cpu|cuda] [--tables 1,2,...]
#                         [--cases 'ARCH:MODULE[:IMAGES] ...'] [--images N] [BUILD_DIR]
#   BUILD_DIR (default: build) configured with -DTHINGSVISION_BUILD_BENCH=ON, with tools/tv-extract
#   and bench/{forward_bench,decode_bench,rsa_bench,writer_bench} built.
#   --smoke   small sizes, under 3 minutes (ctest -L bench runs it into a temporary file); the full
#             run (215 images, vgg16 and ViT-B/16 on 96 of them; RSA N=5000 D=4096; RSS at 100/400/1600
#             images) is planned for under 20 minutes on an idle 2-core machine
#   --out     where to write the report (default: bench/RESULTS.md of the source tree)
#   --append  add this run to the end of --out as a section of its own (headings one level down)
#             instead of replacing it: e.g. table 8 from another platform below a full run
#   --device  where table 1 runs (default $TV_BENCH_DEVICE or cpu); cuda needs nvidia-smi to list a
#             GPU and /usr/bin/python3's torch to have CUDA, else it stops before doing any work
#   --tables, --cases, --images  run part of the suite, at another size (--images N: every case on N)
# Models are exported once into $TV_BENCH_MODELS (default BUILD_DIR/bench/models) with
# models/export.py --weights random --seed 0. LibTorch runs $TV_BENCH_THREADS threads (default: all
# CPUs) in C++ and Python alike, with as many OpenBLAS threads and OMP_WAIT_POLICY=PASSIVE (what
# tv-extract sets for itself; RSA: the same threads for numpy's BLAS as for the C++ side).
# $TV_BENCH_PYTHON (default /usr/bin/python3) runs the Python side. $TV_BENCH_NOTE, if set, is printed
# under the machine table (e.g. "The machine was shared with other jobs").
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
smoke=0
append=0
out=$src/bench/RESULTS.md
build=
device=${TV_BENCH_DEVICE:-cpu}
tables=1,2,3,4,5,6,7
cases_arg=
images_arg=
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) smoke=1 ;;
    --out) out=$2; shift ;;
    --append) append=1 ;;
    --device) device=$2; shift ;;
    --tables) tables=$2; shift ;;
    --cases) cases_arg=$2; shift ;;
    --images) images_arg=$2; shift ;;
    -h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench.sh: unknown option '$1'" >&2; exit 2 ;;
    *) build=$1 ;;
  esac
  shift
done
py=${TV_BENCH_PYTHON:-/usr/bin/python3}  # scripts/gpu-check.sh: the GPU machine's python

# --- the device, checked before any work ---------------------------------------------------------
case $device in
  cpu) card= ;;
  cuda|cuda:[0-9]*)
    if ! card=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null) \
        || [ -z "$card" ]; then
      echo "bench.sh: --device $device: no NVIDIA GPU on this machine (nvidia-smi is missing or lists none); nothing was run" >&2
      exit 2
    fi
    if ! "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2> /dev/null; then
      echo "bench.sh: --device $device: $py's torch has no CUDA (torch.cuda.is_available() is False); nothing was run" >&2
      exit 2
    fi
    card=$(echo "$card" | head -n 1) ;;
  *) echo "bench.sh: --device '$device': expected cpu, cuda or cuda:N" >&2; exit 2 ;;
esac
on() { case ",$tables," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

build=$(cd "${build:-$src/build}" && pwd)
needed=tools/tv-extract  # and what the tables asked for use
{ on 1 || on 8; } && needed="$needed bench/forward_bench"
on 3 && needed="$needed bench/decode_bench"
on 4 && needed="$needed bench/writer_bench"
on 5 && needed="$needed bench/rsa_bench"
for program in $needed; do
  if [ ! -x "$build/$program" ]; then
    echo "bench.sh: '$build/$program' not found (configure with -DTHINGSVISION_BUILD_BENCH=ON and build it)" >&2
    exit 2
  fi
done
tv_extract=$build/tools/tv-extract

threads=${TV_BENCH_THREADS:-$(nproc)}
# tv-extract sets its own thread policy (it restarts itself with OMP_WAIT_POLICY=PASSIVE and gives
# OpenBLAS as many threads as LibTorch; docs/cli.md): forward_bench and Python get the same settings.
unset OPENBLAS_NUM_THREADS OMP_WAIT_POLICY
same_threads() { local n=$1; shift; OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=$n "$@"; }
models=${TV_BENCH_MODELS:-$build/bench/models}
work=$(mktemp -d "${TMPDIR:-/tmp}/tv_bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
report=$work/report.md

if [ $smoke = 1 ]; then
  n_images=12; batch=8; rsa_n=300; rsa_d=128; writer_mib=32; rss_counts="16 32 64"
  cases="resnet18:layer2 resnet18:avgpool"
else
  n_images=215; batch=32; rsa_n=5000; rsa_d=4096; writer_mib=256; rss_counts="100 400 1600"
  # ARCH:MODULE[:IMAGES]: vgg16 and ViT-B/16 on the first 96 of the images (~0.3 s an image on 2
  # cores; 215 would take the run past 20 minutes)
  cases="resnet18:layer2 resnet18:avgpool vgg16:features.30:96 vit_b_16:encoder.ln:96"
fi
cases=${cases_arg:-$cases}
n_images=${images_arg:-$n_images}
thread_counts=$(printf '%s\n' 1 "$threads" | sort -nu | tr '\n' ' ')

say() { echo "bench.sh: $*" >&2; }
md() { printf '%s\n' "$@" >> "$report"; }
# manifest DIR KEY: a field of DIR/manifest.json (timing.extract_seconds falls back to seconds)
manifest() {
  "$py" - "$1/manifest.json" "$2" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
key = sys.argv[2]
if key == "seconds":  # seconds source: timing.extract_seconds (model load excluded) or the total
    t = m.get("timing") or {}
    print(f'{t["extract_seconds"]}\textract_seconds' if "extract_seconds" in t else f'{m["seconds"]}\tseconds')
elif key == "load":  # timing.load_seconds: model load, graph cut, optimize and its check
    print((m.get("timing") or {}).get("load_seconds", "-"))
elif key == "runtime":  # LibTorch's start on its thread, and how long the model load waited for it
    t = m.get("timing") or {}
    print(f'{t.get("runtime_start_seconds", "-")}\t{t.get("runtime_wait_seconds", "-")}')
elif key == "profile":  # forward passes, and the optimize step and its check (from the optimization record)
    import re
    t = m.get("timing") or {}
    reason = " ".join(o.get("reason", "") for o in m.get("optimization") or [])
    opt = re.search(r"frozen[^;]*? in ([0-9.]+) s", reason)  # "frozen + optimize_for_inference in", "frozen only (...) in"
    check = re.search(r"checked in ([0-9.]+) s", reason)
    print(f'{t.get("forward_seconds", "-")}\t{opt.group(1) if opt else "-"}\t{check.group(1) if check else "-"}')
elif key == "forward":  # timing.forward_seconds: the same run's forward passes ("-" before timing existed)
    print((m.get("timing") or {}).get("forward_seconds", "-"))
elif key == "graph":  # optimized / plain, from the "optimization" record when tv-extract writes one
    print(",".join(o.get("graph", "?") for o in m.get("optimization") or []) or "?")
else:
    print(m[key])
EOF
}
json() { "$py" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2"; }
started=$(date +%s)
clock() { echo $(( $(date +%s) - started )); }
durations=

# --- images: N files under new names from examples/images + OpenCV's sample photographs --------------
make_images() {  # make_images DIR N
  mkdir -p "$1"
  local sources=("$src"/examples/images/*.jpg)
  local doc=(/usr/share/doc/opencv-doc/examples/data/*.jpg)  # absent where opencv-doc is (GPU machines)
  [ -e "${doc[0]}" ] && sources+=("${doc[@]}")
  local i=0 target
  while [ $i -lt "$2" ]; do
    target=$(printf '%s/img_%05d.jpg' "$1" $i)
    ln "${sources[$((i % ${#sources[@]}))]}" "$target" 2> /dev/null || cp "${sources[$((i % ${#sources[@]}))]}" "$target"
    i=$((i + 1))
  done
}
make_images "$work/images_$n_images" "$n_images"

# --- models ----------------------------------------------------------------------------------------
mkdir -p "$models"
archs=
on 1 && archs="$archs $(for c in $cases; do echo "${c%%:*}"; done)"
{ on 2 || on 6 || on 8; } && archs="$archs resnet18"
if on 7; then  # table 7's cases (below): resnet18 and, in the full run, vit_b_16
  whole_archs="resnet18"; [ $smoke = 1 ] || whole_archs="resnet18 vit_b_16"
  [ -n "${TV_BENCH_WHOLE_CASES:-}" ] && whole_archs=$(for c in $TV_BENCH_WHOLE_CASES; do echo "${c%%:*}"; done)
  archs="$archs $whole_archs"
fi
for arch in $(printf '%s\n' $archs | sort -u); do
  if [ ! -f "$models/$arch.pt" ]; then
    say "exporting $arch (random weights, seed 0) into $models"
    "$py" "$src/models/export.py" --arch "$arch" --weights random --seed 0 --out "$models" > /dev/null
  fi
done

# --- which optimize flags this tv-extract has -----------------------------------------------------------
help=$("$tv_extract" --help)
if grep -q -- '--no-optimize' <<< "$help"; then
  variants=("default:1:" "--no-optimize:0:--no-optimize")  # label:optimize:flag
elif grep -q -- '--optimize' <<< "$help"; then
  variants=("default:0:" "--optimize:1:--optimize")
else
  variants=("default:0:")
fi
has_decode_threads=0
grep -q -- '--decode-threads' <<< "$help" && has_decode_threads=1

# --- machine ---------------------------------------------------------------------------------------
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
# (forward_bench may be absent: --tables 7 needs tv-extract only)
blas=$( (ldd "$build/bench/forward_bench" 2> /dev/null || true) | (grep -oE 'lib(openblas[a-z0-9_]*|blis[a-z0-9_]*|mkl_rt|blas)\.so[.0-9]*' || true) | sort -u | tr '\n' ' ')
blas_alt=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
py_torch=$("$py" -c 'import torch, torchvision; print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")')
os_name=$(. /etc/os-release 2> /dev/null && echo "${PRETTY_NAME:-?}")
pkg() { dpkg-query -W -f '${Version}' "$1" 2> /dev/null | sed 's/^[0-9]*://; s/[+-].*//' || true; }
libraries="LibTorch $("$tv_extract" --version | sed -n 's/.*(LibTorch \([^)]*\)).*/\1/p'), OpenCV $(pkg libopencv-dev)"
[ -n "$(pkg libonnxruntime-dev)" ] && libraries="$libraries, ONNX Runtime $(pkg libonnxruntime-dev)"
if [ $smoke = 1 ]; then invocation="scripts/bench.sh --smoke"; else invocation="scripts/bench.sh"; fi
[ "$device" != cpu ] && invocation="$invocation --device $device"
[ "$tables" != 1,2,3,4,5,6,7 ] && invocation="$invocation --tables $tables"
[ -n "$cases_arg" ] && invocation="$invocation --cases '$cases_arg'"
[ -n "$images_arg" ] && invocation="$invocation --images $images_arg"
[ $append = 1 ] && invocation="$invocation --append"
md "# bench/ results" "" \
  "Written by \`$invocation\` on $(date -u '+%Y-%m-%d %H:%M UTC'). Reported, not asserted; every number," \
  "ratio and remark below is computed by the script from this one run." "" \
  "| | |" "|---|---|" \
  "| CPU | ${cpu:-unknown} |" \
  "| cores (nproc / hardware) | $(nproc) / $(nproc --all) |" \
  "| platform | $os_name; $libraries |" \
  "| BLAS | ${blas:-none linked directly}; libblas.so.3 → ${blas_alt:-?} |" \
  "| threads | LibTorch $threads in C++ and Python (torch.set_num_threads), OpenBLAS as many, OMP_WAIT_POLICY=PASSIVE (tv-extract's own setting; given to forward_bench and Python) |" \
  "| Python | $py: $py_torch |" \
  "| tv-extract flags | optimize: $( [ ${#variants[@]} -gt 1 ] && echo "rows '${variants[0]%%:*}' and '${variants[1]%%:*}'" || echo none); --decode-threads: $([ $has_decode_threads = 1 ] && echo yes || echo no) |" \
  "| device of table 1 | $device$([ -n "$card" ] && echo " ($card)") |" \
  "| load average at start | $(cut -d' ' -f1-3 /proc/loadavg) |" \
  "| load average at the end | LOAD_AT_END |" ""
[ -n "${TV_BENCH_NOTE:-}" ] && md "$TV_BENCH_NOTE" ""
if [ "$device" = cpu ]; then
  md "CUDA: not run (this run used the CPU; \`scripts/bench.sh --device cuda\` on a machine with an NVIDIA" \
     "GPU runs table 1 there, with tv-extract --device cuda and Python torch on cuda)." ""
fi

# tv_run OUT_DIR IMAGES MODEL MODULE THREADS [FLAGS...]: one tv-extract run, prints "SECONDS\tSOURCE"
tv_run() {
  local dir=$1 images=$2 model=$3 module=$4 n=$5
  shift 5
  rm -rf "$dir"
  "$tv_extract" --model "$model" --module "$module" --images "$images" --out "$dir" --threads "$n" \
    --batch-size "$batch" --quiet "$@"
  manifest "$dir" seconds
}

# --- (1) extraction ----------------------------------------------------------------------------------
if on 1; then
  say "(1) extraction on $device: $cases, $n_images images, batch $batch, $threads threads"
  : > "$work/extraction.tsv"
  for c in $cases; do
    arch=${c%%:*}; module=${c#*:}; count=$n_images
    case $module in *:*) count=${images_arg:-${module#*:}}; module=${module%%:*} ;; esac
    images_dir=$work/images_$count
    [ -d "$images_dir" ] || make_images "$images_dir" "$count"
    say "  $arch $module ($count images): Python"
    same_threads "$threads" "$py" "$src/bench/python_extract.py" --arch "$arch" --pt "$models/$arch.pt" --module "$module" \
      --images "$images_dir" --threads "$threads" --batch-size "$batch" --device "$device" > "$work/python.json"
    py_images=$(json "$work/python.json" images)
    py_seconds=$(json "$work/python.json" seconds)
    for v in "${variants[@]}"; do
      label=${v%%:*}; rest=${v#*:}; optimize=${rest%%:*}; flag=${rest#*:}
      say "  $arch $module: tv-extract $label, forward_bench optimize=$optimize"
      result=$(tv_run "$work/out_$optimize" "$images_dir" "$models/$arch.pt" "$module" "$threads" \
        --device "$device" $flag)
      graph=$(manifest "$work/out_$optimize" graph)
      images=$(manifest "$work/out_$optimize" num_images)
      same_threads "$threads" "$build/bench/forward_bench" --model "$models/$arch.pt" --module "$module" --images "$images_dir" \
        --batch-size "$batch" --threads "$threads" --optimize "$optimize" --device "$device" > "$work/forward.json"
      [ "$(json "$work/forward.json" images)" = "$images" ] || { say "forward_bench and tv-extract saw different images"; exit 1; }
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$arch" "$module" "$label" \
        "$optimize" "$images" "$result" "$graph" "$(json "$work/forward.json" seconds)" "$py_images" "$py_seconds" \
        "$(json "$work/forward.json" warmup_seconds)" "$(json "$work/forward.json" batches)" \
        "$(manifest "$work/out_$optimize" forward)" "$(json "$work/forward.json" decode_cpu_seconds)" \
        "$(json "$work/forward.json" cpu_seconds)" "$threads" >> "$work/extraction.tsv"
    done
    if [ -d "$work/out_0" ] && [ -d "$work/out_1" ]; then  # the optimize toggle must not change features
      "$py" -c 'import sys, numpy as np
a, b = (np.load(f"{d}/{sys.argv[3]}/features.npy") for d in sys.argv[1:3])
err = float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))
sys.exit(f"bench.sh: optimize changed {sys.argv[3]} features (max rel. difference {err:.1e})" if a.shape != b.shape or err > 1e-4 else 0)' \
        "$work/out_0" "$work/out_1" "$module"
    fi
    rm -rf "$work/out_0" "$work/out_1"
  done
  md "## 1. Extraction on $device, images/s" "" \
    "The first N (images column) of $n_images JPEGs (examples/images + OpenCV sample photographs, repeated" \
    "under new names); batch $batch, $threads threads everywhere. *tv-extract*: end to end (decode," \
    "preprocess, forward, .npy write) over manifest.json's timing.extract_seconds (model load, graph cut" \
    "and the optimize check excluded)." \
    "*forward-only limit*: bench/forward_bench, the same Model::extract calls (same images, batches," \
    "module, optimize setting) on tensors decoded beforehand, after one untimed warm-up batch. *Python*:" \
    "bench/python_extract.py (PIL + torchvision transforms + forward hook on the full network, same" \
    "weights, model load excluded). *graph*: what manifest.json says the optimize step kept." \
    "*in one run*: end to end over the forward passes of the same tv-extract run (manifest.json's" \
    "timing.extract_seconds / timing.forward_seconds): the pipeline's overhead, the issue's goal." \
    "*vs forward-only run*: end to end over the separate forward-only run, and its floor when decoding" \
    "shares the cores with forward passes that keep them busy: (forward-only + decode CPU / cores) /" \
    "forward-only, decode CPU measured by forward_bench (process CPU time of its decoding stage)." ""
  "$py" "$src/bench/report.py" extraction "$work/extraction.tsv" >> "$report"
  md ""
  durations="$durations (1) $(clock) s;"
fi

# --- (2) thread split ----------------------------------------------------------------------------------
if on 2; then
  say "(2) thread split: resnet18 avgpool, threads $thread_counts"
  : > "$work/threads.tsv"
  for n in $thread_counts; do
    decode_settings="default"
    [ $has_decode_threads = 1 ] && decode_settings="default $(printf '%s\n' 1 "$threads" | sort -nu | tr '\n' ' ')"
    for d in $decode_settings; do
      flags=(); [ "$d" != default ] && flags=(--decode-threads "$d")
      result=$(tv_run "$work/out_threads" "$work/images_$n_images" "$models/resnet18.pt" avgpool "$n" "${flags[@]}")
      printf 'tv-extract\t%s\t%s\t%s\t%s\n' "$n" "$d" "$(manifest "$work/out_threads" num_images)" "$result" >> "$work/threads.tsv"
    done
    same_threads "$n" "$py" "$src/bench/python_extract.py" --arch resnet18 --pt "$models/resnet18.pt" --module avgpool \
      --images "$work/images_$n_images" --threads "$n" --batch-size "$batch" > "$work/python.json"
    printf 'python\t%s\t-\t%s\t%s\t-\n' "$n" "$(json "$work/python.json" images)" "$(json "$work/python.json" seconds)" >> "$work/threads.tsv"
  done
  rm -rf "$work/out_threads"
  md "## 2. Thread split: resnet18 avgpool on the CPU, images/s" "" \
    "$n_images images, batch $batch, tv-extract with its default optimize setting; \"decode threads\" is" \
    "tv-extract's --decode-threads (\"default\": its own choice; only when tv-extract has the option)." ""
  "$py" "$src/bench/report.py" threads "$work/threads.tsv" >> "$report"
  md ""
  durations="$durations (2) $(clock) s;"
fi

# --- (3) decode + preprocess ---------------------------------------------------------------------------
if on 3; then
  say "(3) decode + preprocess"
  decode_args=()
  [ $smoke = 1 ] && decode_args=(--benchmark_filter='jpeg_thingsvision|DecodeOnly')
  "$build/bench/decode_bench" "${decode_args[@]}" --benchmark_format=json > "$work/decode.json" 2> /dev/null
  "$py" "$src/bench/decode_python.py" --seconds "$([ $smoke = 1 ] && echo 0.5 || echo 3)" > "$work/decode_python.txt"
  md "## 3. Decode + preprocess, images/s on one thread" "" \
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
  durations="$durations (3) $(clock) s;"
fi

# --- (4) writers ---------------------------------------------------------------------------------------
if on 4; then
  say "(4) writers: $writer_mib MiB"
  mkdir -p "$work/writer"
  "$src/bench/writer_bench.sh" "$build" $writer_mib "$work/writer" > "$work/writer.txt" 2>&1
  md "## 4. Feature writers, MB/s" "" \
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
  durations="$durations (4) $(clock) s;"
fi

# --- (5) RSA -------------------------------------------------------------------------------------------
if on 5; then
  say "(5) RSA: N=$rsa_n D=$rsa_d"
  # numpy's BLAS gets the same threads as the C++ side
  OPENBLAS_NUM_THREADS=$threads "$build/bench/rsa_bench" $rsa_n $rsa_d "$threads" > "$work/rsa.txt" 2>&1
  md "## 5. RSA vs numpy/scipy, seconds" "" \
    "bench/rsa_bench N=$rsa_n D=$rsa_d, $threads threads, OPENBLAS_NUM_THREADS=$threads for both (numpy: $(grep -m1 '^numpy config' "$work/rsa.txt" | sed 's/^numpy config: *//' || true))." \
    "$(sed -n 2p "$work/rsa.txt")." "" \
    "| operation | C++ s | numpy/scipy s | speedup | C++ mem/RDM | numpy mem/RDM | agreement (rel.) |" \
    "|---|---:|---:|---:|---:|---:|---:|"
  awk '/^operation/ {t = 1; next} t && NF == 7 {printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7}' \
    "$work/rsa.txt" >> "$report"
  md "" "$(grep '^(mem/RDM' "$work/rsa.txt" || true)" ""
  durations="$durations (5) $(clock) s;"
fi

# --- (6) peak RSS against image count ----------------------------------------------------------------
if on 6; then
  say "(6) peak RSS: $rss_counts images"
  : > "$work/rss.tsv"
  for n in $rss_counts; do
    rm -rf "$work/rss_images" "$work/out"
    make_images "$work/rss_images" "$n"
    start=$(date +%s.%N)
    /usr/bin/time -v "$tv_extract" --model "$models/resnet18.pt" --module layer2 --batch-size "$batch" \
      --images "$work/rss_images" --out "$work/out" --threads "$threads" --quiet 2> "$work/time.txt"
    wall=$("$py" -c 'import sys, time; print(f"{time.time() - float(sys.argv[1]):.2f}")' "$start")
    printf '%s\t%s\t%s\t%s\n' "$n" "$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")" \
      "$(du -sm "$work/out" | cut -f1)" "$wall" >> "$work/rss.tsv"
  done
  rm -rf "$work/rss_images" "$work/out"
  md "## 6. Peak RSS of tv-extract against image count" "" \
    "resnet18, --module layer2 (the largest output of the suite's ResNet cases), batch $batch, $threads threads," \
    "npy, default optimize setting; /usr/bin/time -v's maximum resident set size; seconds include model load." ""
  "$py" "$src/bench/report.py" rss "$work/rss.tsv" >> "$report"
  md ""
  durations="$durations (6) $(clock) s;"
fi

# --- (7) whole process, as `time` sees it: tv-extract against THINGSvision itself --------------------------
if on 7; then
  if [ $smoke = 1 ]; then whole_cases="resnet18:avgpool:12"; else
    whole_cases="resnet18:avgpool:215 resnet18:layer2:215 vit_b_16:encoder.ln:96 resnet18:avgpool:2150 resnet18:layer2:2150"
  fi
  whole_cases=${TV_BENCH_WHOLE_CASES:-$whole_cases}
  # THINGSvision from its released source beside $py's torch (scripts/setup-thingsvision.sh; needs
  # PyPI once), unless $TV_BENCH_THINGSVISION gives its PYTHONPATH; the smoke run uses it only if set.
  tv_path=${TV_BENCH_THINGSVISION:-}
  if [ -z "$tv_path" ] && [ $smoke = 0 ]; then
    tv_path=$("$src/scripts/setup-thingsvision.sh" "$build/bench/thingsvision" "$py" 2> "$work/setup.log") ||
      { say "THINGSvision could not be set up: $(tail -1 "$work/setup.log")"; tv_path=; }
  fi
  say "(7) whole process: $whole_cases; THINGSvision: ${tv_path:-not set up}"
  : > "$work/whole.tsv"
  whole_time() {  # whole_time OUT_FILE cmd...: wall, CPU (user + sys) seconds and peak RSS (KiB) of cmd
    /usr/bin/time -f '%e %U %S %M' -o "$1.time" "${@:2}" > /dev/null 2> "$1.err" || { cat "$1.err" >&2; return 1; }
    awk '{ printf "%s\t%.2f\t%s\n", $1, $2 + $3, $4 }' "$1.time"
  }
  for i in 1 2 3; do  # process start + exit, no work (LibTorch is not loaded: it is a plugin)
    printf 'start\t-\t-\t%s\t%s\t-\t-\t-\n' "$i" "$(whole_time "$work/version" "$build/libexec/thingsvision/tv-extract" --version 2>/dev/null ||
      whole_time "$work/version" "$tv_extract" --version)" >> "$work/whole.tsv"
  done
  for c in $whole_cases; do
    arch=${c%%:*}; rest=${c#*:}; module=${rest%%:*}; count=${rest#*:}
    images_dir=$work/images_$count
    [ -d "$images_dir" ] || make_images "$images_dir" "$count"
    reps=3; [ "$count" -gt 500 ] && reps=1
    for rep in $(seq $reps); do
      say "  $arch $module, $count images, run $rep/$reps: tv-extract"
      rm -rf "$work/whole_tv"
      t=$(whole_time "$work/whole_tv" env -u OMP_WAIT_POLICY -u OPENBLAS_NUM_THREADS "$tv_extract" --model "$models/$arch.pt" \
        --module "$module" --images "$images_dir" --out "$work/whole_tv" --threads "$threads" --batch-size "$batch" --quiet)
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t-\t%s\t%s\n' "$arch:$module" "$count" tv-extract "$rep" "$t" \
        "$(manifest "$work/whole_tv" load)" \
        "$(manifest "$work/whole_tv" seconds | cut -f1)" "$(manifest "$work/whole_tv" runtime)" \
        "$(manifest "$work/whole_tv" profile)" >> "$work/whole.tsv"
      [ -n "$tv_path" ] || continue
      say "  $arch $module, $count images, run $rep/$reps: THINGSvision"
      rm -rf "$work/whole_py"
      t=$(whole_time "$work/whole_py" env PYTHONPATH="$tv_path" OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS="$threads" \
        "$py" "$src/bench/thingsvision_extract.py" --arch "$arch" --pt "$models/$arch.pt" --module "$module" \
        --images "$images_dir" --out "$work/whole_py" --threads "$threads" --batch-size "$batch")
      same=$("$py" -c 'import sys, numpy as np
a = np.load(sys.argv[1] + "/features.npy"); b = np.load(sys.argv[2] + "/" + sys.argv[3] + "/features.npy")
print(f"{float(np.abs(a - b.reshape(a.shape)).max() / np.abs(a).max()):.1e}" if a.size == b.size else "shape")' \
        "$work/whole_py" "$work/whole_tv" "$module")
      phases=$("$py" -c 'import json, sys; p = json.load(open(sys.argv[1])); print("\t".join(f"{p[k]:.3f}" for k in ("imports", "model", "extract", "save")))' \
        "$work/whole_py/phases.json" 2>/dev/null || printf -- '-\t-\t-\t-')
      printf '%s\t%s\t%s\t%s\t%s\t-\t-\t%s\t%s\n' "$arch:$module" "$count" THINGSvision "$rep" "$t" "$same" "$phases" >> "$work/whole.tsv"
    done
  done
  rm -rf "$work/whole_tv" "$work/whole_py"
  md "## 7. Whole process, as \`time\` sees it: tv-extract against THINGSvision" "" \
    "/usr/bin/time of the whole process (start, model load, extraction, writing, exit), median of 3 runs" \
    "(1 run at 2150 images), $threads threads, batch $batch, the same weights (models/export.py --seed 0;" \
    "THINGSvision loads the archive's state dict) and images. tv-extract with every default (optimize on," \
    "OMP_WAIT_POLICY unset: its launcher sets it). THINGSvision $( [ -n "$tv_path" ] && echo "2.7.3 run from its released source (scripts/setup-thingsvision.sh: the PyPI wheel unpacked, its requirements do not install beside this torch) with $py's torch, OMP_WAIT_POLICY=PASSIVE and OpenBLAS threads = threads" || echo "was not set up (scripts/setup-thingsvision.sh; TV_BENCH_THINGSVISION)"):" \
    "get_extractor(source='torchvision', pretrained=False), ImageDataset, DataLoader, extract_features," \
    "save_features npy (bench/thingsvision_extract.py). *fixed* = whole − extract − load (manifest.json" \
    "timing). LibTorch is a plugin the job loads on a thread from its start (src/model/backends/torch_runtime.cpp):" \
    "*LibTorch start* is that load on its thread, beside the image listing and the first decoding, and" \
    "*of it waited* the part the model load waited for (inside *load*). *start+exit*: \`tv-extract" \
    "--version\` (the program itself, no launcher, no LibTorch): starting and ending the process." ""
  "$py" "$src/bench/report.py" whole "$work/whole.tsv" >> "$report"
  md ""
  durations="$durations (7) $(clock) s;"
fi

# --- (8) backends ---------------------------------------------------------------------------------------
if on 8; then
  backend_cases=${cases_arg:-resnet18:avgpool resnet18:layer2}
  say "(8) backends: $backend_cases, $n_images images, batch $batch, $threads threads"
  # a plain torch.onnx.export (default opset, BatchNorm folded) of the weights of $models/resnet18.pt
  "$py" "$src/tests/cli/onnx_plain_export_models.py" "$work/onnx" resnet18 > /dev/null
  backends="libtorch:1 libtorch:0 opencv_dnn:0"
  "$tv_extract" --model "$work/onnx/resnet18.onnx" --backend onnxruntime --list-modules > /dev/null 2>&1 &&
    backends="$backends onnxruntime:0"
  make_images "$work/images_16" 16
  : > "$work/backends.tsv"
  for c in $backend_cases; do
    arch=${c%%:*}; module=${c#*:}; module=${module%%:*}
    [ "$arch" = resnet18 ] || { say "table 8 runs resnet18 only, not $arch"; exit 2; }
    for b in $backends; do
      backend=${b%%:*}; optimize=${b#*:}
      model=$models/resnet18.pt; [ "$backend" = libtorch ] || model=$work/onnx/resnet18.onnx
      say "  $arch $module: forward_bench --backend $backend --optimize $optimize"
      same_threads "$threads" "$build/bench/forward_bench" --model "$model" --backend "$backend" --module "$module" \
        --images "$work/images_$n_images" --batch-size "$batch" --threads "$threads" --optimize "$optimize" > "$work/forward.json"
      # the same features as TorchScript's (16 images, tv-extract; 1e-4 relative)
      flags=(); [ "$optimize" = 0 ] && flags=(--no-optimize)
      rm -rf "$work/out_$backend.$optimize"
      "$tv_extract" --model "$model" --backend "$backend" --preset thingsvision --module "$module" \
        --images "$work/images_16" --out "$work/out_$backend.$optimize" --threads "$threads" --quiet "${flags[@]}"
      same=$("$py" -c 'import sys, numpy as np
a, b = (np.load(f"{d}/{sys.argv[3]}/features.npy") for d in sys.argv[1:3])
err = float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))
sys.exit(f"bench.sh: {sys.argv[2]} features differ from TorchScript (max rel. difference {err:.1e})" if a.shape != b.shape or err > 1e-4 else print(f"{err:.1e}"))' \
        "$work/out_libtorch.1" "$work/out_$backend.$optimize" "$module")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$arch" "$module" "$backend" "$optimize" \
        "$(json "$work/forward.json" images)" "$(json "$work/forward.json" seconds)" \
        "$(json "$work/forward.json" warmup_seconds)" "$(json "$work/forward.json" cpu_seconds)" "$same" >> "$work/backends.tsv"
    done
    rm -rf "$work"/out_*
  done
  md "## 8. Backends: TorchScript (LibTorch) vs OpenCV DNN vs ONNX Runtime, forward-only images/s" "" \
    "bench/forward_bench (Model::extract on tensors decoded beforehand, after one untimed warm-up batch) on" \
    "$n_images images, batch $batch, $threads threads: resnet18 (models/export.py --weights random --seed 0) as its" \
    "TorchScript file (LibTorch, with and without tv-extract's optimize step) and as a plain torch.onnx.export" \
    "of the same weights (tests/cli/onnx_plain_export_models.py: default opset, BatchNorm folded) through" \
    "OpenCV DNN (fusion off, so that every layer's output is kept) and ONNX Runtime (all graph optimizations," \
    "the requested layer added as a graph output), where the build has it. *same features*: tv-extract's" \
    "features of 16 images against TorchScript's (optimized), max |difference| / max |value| (asserted ≤ 1e-4)." ""
  "$py" "$src/bench/report.py" backends "$work/backends.tsv" >> "$report"
  md ""
  durations="$durations (8) $(clock) s;"
fi

sed -i "s/LOAD_AT_END/$(cut -d' ' -f1-3 /proc/loadavg)/" "$report"
md "Elapsed at the end of each table:$durations total $(clock) s."
mkdir -p "$(dirname "$out")"
if [ $append = 1 ]; then  # one section: "# bench/ results" → "## bench/ results: ...", "## N." → "### N."
  { echo; awk -v title="## bench/ results: $os_name (appended run)" \
      'NR == 1 && $0 == "# bench/ results" { print title; next } { sub(/^## /, "### "); print }' "$report"; } >> "$out"
else
  cp "$report" "$out"
fi
say "wrote $out ($(clock) s)"
