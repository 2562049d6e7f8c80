#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU and PyPI's torch (issue #16): runs the CUDA tests and
# the GPU benchmark, and prints one summary table (also written to OUT/gpu-check.md).
#   scripts/gpu-check.sh [--bundle FILE | --build DIR] [--python PY] [--images N] [--out DIR]
#     --bundle FILE  a bundle made by scripts/gpu-bundle.sh on Debian 12 (default
#                    .gpu-bundle/thingsvision-gpu.tar.xz): the programs and every library they need
#                    but glibc, libstdc++ and torch; its torch version must be PY's
#     --build DIR    a build tree of this machine instead (the CPU path: scripts/check-libtorch.sh's
#                    build-pypi, or Debian's build; ctest gpu_check_cpu_path runs it so)
#     --python PY    the python with torch and torchvision (default python3): exports the models,
#                    computes the references, runs the Python side of the benchmark
#     --images N     images for the benchmark (default 5000 with a GPU, 8 without)
#     --out DIR      where the summary and the benchmark report go (default ./gpu-check-out)
# Steps: (1) the machine: GPU, driver, torch; (2) fixtures by PY: tests/reference/export_cuda_models.py
# and the resnet18 of the CLI tests; (3) tests/cuda_test (gtest) and tests/cli/cuda_test.sh refused /
# extract; (4) scripts/bench.sh --tables 1 --device cuda --cases 'resnet50:avgpool vit_b_16:encoder.ln'
# on N images (tv-extract against Python torch on the same GPU, same weights). Without a GPU the same
# steps run on the CPU (the CUDA tests skip, and say why) with --device cpu: the dry run. Exit status:
# 0 when nothing failed (skips are not failures), 1 otherwise.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
bundle=$src/.gpu-bundle/thingsvision-gpu.tar.xz build= py=python3 images= out=$PWD/gpu-check-out
while (($#)); do
  case $1 in
    --bundle) bundle=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --python) py=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
say() { echo "gpu-check.sh: $*" >&2; }
die() { say "$*"; exit 2; }
mkdir -p "$out" && out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tv_gpu_check.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- (1) the machine --------------------------------------------------------------------------------
torch_info=$("$py" -c 'import torch, torchvision; print(torch.__version__, torchvision.__version__, int(torch.cuda.is_available()), torch.version.cuda, torch.cuda.device_count())' 2>&1) \
  || die "$py cannot import torch and torchvision: $torch_info"
read -r torch_version torchvision_version gpu cuda_version gpu_count <<<"$torch_info"
card=
if [[ $gpu == 1 ]]; then
  card=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)
  [[ -n $card ]] || card=$("$py" -c 'import torch; print(torch.cuda.get_device_name(0))')
fi
device=cpu; [[ $gpu == 1 ]] && device=cuda
images=${images:-$([[ $gpu == 1 ]] && echo 5000 || echo 8)}
say "torch $torch_version (CUDA $cuda_version), $( [[ $gpu == 1 ]] && echo "$gpu_count GPU(s): $card" || echo "no GPU: the CPU dry run")"

# --- the programs: a build tree, or the bundle unpacked ------------------------------------------------
if [[ -n $build ]]; then
  build=$(cd "$build" && pwd) || die "--build: no folder '$build'"
  origin="build tree $build"
else
  [[ -f $bundle ]] || die "no bundle '$bundle': make one with scripts/gpu-bundle.sh on Debian 12 (and carry it), or pass --build DIR"
  xz -dc "$bundle" | tar -C "$work" -xf - || die "cannot unpack '$bundle'"
  build=$work/thingsvision-gpu
  bundle_torch=$(sed -n 's/.*"torch": "\([^"]*\)".*/\1/p' "$build/BUNDLE.json")
  [[ $bundle_torch == "$torch_version" ]] || die "the bundle was built against torch $bundle_torch, $py has torch $torch_version: \
make a venv with torch==${torch_version%%+*} here (TORCH_SPEC, scripts/setup-venv.sh) and run scripts/gpu-bundle.sh --venv it"
  torch_lib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  export LD_LIBRARY_PATH=$build:$build/lib:$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  # tests/cuda_test holds the library's objects: it finds the TorchScript plugin through this.
  export THINGSVISION_TORCH_PLUGIN=$build/libthingsvision_torch.so
  origin="bundle $(basename "$bundle") ($(tr -d '\n' <"$build/BUNDLE.json"))"
fi
for p in tools/tv-extract tools/tv-merge tests/cuda_test; do
  [[ -x $build/$p ]] || die "$build/$p is missing"
done
"$build/tools/tv-extract" --version >"$work/version" 2>&1 || die "tv-extract does not start: $(cat "$work/version")"
say "programs: $origin; $(head -n 1 "$work/version")"

# --- (2) fixtures -----------------------------------------------------------------------------------
data=$work/data
say "exporting the test models with $py"
"$py" "$src/tests/reference/export_cuda_models.py" "$data/cuda" >"$work/fixture.log" 2>&1 \
  && "$py" "$src/tests/reference/extraction_reference.py" export "$data/extraction/model" >>"$work/fixture.log" 2>&1 \
  || { cat "$work/fixture.log" >&2; die "exporting the test models failed"; }

# --- (3) tests ----------------------------------------------------------------------------------------
failures=0
rows=()
row() { rows+=("| $1 | $2 | $3 |"); }
say "tests/cuda_test"
TV_TEST_DATA_DIR=$data "$build/tests/cuda_test" >"$out/cuda_test.log" 2>&1
rc=$?
# one line per test, "[  RESULT  ] Suite.Name (N ms)" (the lists at the end have no time)
passed=$(grep -c '^\[       OK \] .* ms)$' "$out/cuda_test.log")
skipped=$(grep -c '^\[  SKIPPED \] .* ms)$' "$out/cuda_test.log")
failed=$(grep -c '^\[  FAILED  \] .* ms)$' "$out/cuda_test.log")
reason=$(grep -m1 -A1 'Skipped$' "$out/cuda_test.log" | tail -n 1 | sed 's/|/\\|/g')
[[ $rc == 0 ]] || failures=$((failures + 1))
row "tests/cuda_test (Model on cuda, cuda:0, pipeline, float16 CLIP, cuda:N)" \
  "$([[ $rc == 0 ]] && echo ok || echo "**FAILED** (exit $rc)")" "$passed passed, $skipped skipped, $failed failed${reason:+; skipped because: $reason}"
cli_env=(TV_EXTRACT="$build/tools/tv-extract" TV_MERGE="$build/tools/tv-merge" TV_PYTHON="$py" TV_SOURCE_DIR="$src"
         TV_MODEL="$data/extraction/model/resnet18.pt" TV_REFERENCE="$src/tests/reference/extraction_reference.py")
for mode in extract refused; do
  say "tests/cli/cuda_test.sh $mode"
  env "${cli_env[@]}" bash "$src/tests/cli/cuda_test.sh" "$mode" >"$out/cli_cuda_$mode.log" 2>&1
  rc=$?
  case $rc in
    0) status=ok ;;
    77) status=skipped ;;
    *) status="**FAILED** (exit $rc)"; failures=$((failures + 1)) ;;
  esac
  row "tests/cli/cuda_test.sh $mode" "$status" "$(grep -E '^(OK|SKIP|FAIL)|tolerance' "$out/cli_cuda_$mode.log" | tr '\n' ' ' | sed 's/|/\\|/g')"
done

# --- (4) benchmark --------------------------------------------------------------------------------------
say "scripts/bench.sh --device $device on $images images (resnet50 avgpool, vit_b_16 encoder.ln)"
TV_BENCH_PYTHON=$py TV_BENCH_MODELS=$work/bench_models TV_BENCH_THREADS=${TV_BENCH_THREADS:-$(nproc)} \
  TV_BENCH_NOTE="Run by scripts/gpu-check.sh ($origin)." \
  "$src/scripts/bench.sh" --device "$device" --tables 1 --cases "resnet50:avgpool vit_b_16:encoder.ln" \
  --images "$images" --out "$out/bench.md" "$build" >"$out/bench.log" 2>&1
rc=$?
if [[ $rc == 0 ]]; then
  row "scripts/bench.sh --device $device, $images images" ok "$out/bench.md (its table 1 is below)"
else
  failures=$((failures + 1))
  row "scripts/bench.sh --device $device, $images images" "**FAILED** (exit $rc)" "$(tail -n 3 "$out/bench.log" | tr '\n' ' ' | sed 's/|/\\|/g')"
fi

# --- summary ---------------------------------------------------------------------------------------------
{
  echo "# scripts/gpu-check.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| GPU | $([[ $gpu == 1 ]] && echo "$gpu_count: $card" || echo "none: CPU dry run (--device cpu; the CUDA tests skip)") |"
  echo "| torch | $torch_version (CUDA $cuda_version), torchvision $torchvision_version, $py |"
  echo "| programs | $origin |"
  echo
  echo "| check | result | details |"
  echo "|---|---|---|"
  printf '%s\n' "${rows[@]}"
  if [[ -f $out/bench.md ]]; then
    echo
    sed -n '/^## 1\./,/^## [2-9]\./p' "$out/bench.md" | sed '$ { /^## [2-9]\./d }'
  fi
} >"$out/gpu-check.md"
cat "$out/gpu-check.md"
((failures == 0)) || { say "$failures check(s) failed: see $out"; exit 1; }
