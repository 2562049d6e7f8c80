#!/usr/bin/env bash
# Builds thingsvision-cpp against another LibTorch and runs the whole test suite with it: platform (c)
# of the README's "Platforms" (PyPI's torch wheel, a CUDA build) or any LibTorch prefix.
#   scripts/check-libtorch.sh [--venv DIR] [--build DIR] [--no-tests] [CTEST_ARGS...]
#     --venv DIR   a venv made by scripts/setup-venv.sh (default: .venv, made when missing): its
#                  torch's LibTorch (torch.utils.cmake_prefix_path) is built against, and its python
#                  computes every test reference (so they come from that torch, PIL and numpy)
#     --build DIR  build folder (default: build-pypi)
#   TORCH_PREFIX=DIR scripts/check-libtorch.sh ...   another LibTorch (CMAKE_PREFIX_PATH) instead
#                  of the venv's; the venv's python still computes the references.
#   TV_EXTRA_CMAKE_ARGS="-DTHINGSVISION_BUILD_BENCH=ON ..."   more arguments for the configure step
# The other libraries (OpenCV, HDF5, matio, ...) are the Debian packages of scripts/install-deps.sh.
# Where nvcc and CUDA's libraries are installed and the LibTorch is a CUDA build, the CUDA code paths
# are compiled; CUDA tests skip without a GPU.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
venv=$repo/.venv build=build-pypi run_tests=1 ctest_args=()
while (($#)); do
  case $1 in
    --venv) venv=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --no-tests) run_tests=0; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) ctest_args+=("$1"); shift ;;
  esac
done
scripts/install-deps.sh --tests
[[ -x "$venv/bin/python" ]] || scripts/setup-venv.sh "$venv"
python=$venv/bin/python
# The LibTorch root and its share/cmake: TorchConfig finds libtorch.so under the root, not Debian's.
prefix=${TORCH_PREFIX:-$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__) + ";" + torch.utils.cmake_prefix_path)')}
# PyPI's libtorch_cuda.so needs the NCCL, cuDNN, ... of the venv's nvidia-* wheels (its RUNPATH finds
# them at run time); the linker must find those too, not an older copy elsewhere (CUDA's own NCCL).
link_dirs=$("$python" -c 'import glob, os, torch; print(":".join(sorted(set(glob.glob(os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), "nvidia", "*", "lib")) + glob.glob(os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), "nvidia", "cu*", "lib"))))))')
linker_args=()
[[ -n $link_dirs ]] && linker_args=(-DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$link_dirs" -DCMAKE_SHARED_LINKER_FLAGS="-Wl,-rpath-link,$link_dirs")
cuda_args=()
if command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]]; then
  nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  cuda_args=(-DCMAKE_CUDA_COMPILER="$nvcc" -DCUDAToolkit_ROOT="$(dirname "$(dirname "$nvcc")")")
fi
# THINGSvision itself (its released source beside the venv's torch and numpy 2) for the zoo_source_*
# parity checks; without PyPI those checks compare with the Python models' hooks only.
tv_reference=$(scripts/setup-thingsvision.sh "$build/thingsvision" "$python" 2>"$build.thingsvision.log") ||
  { tv_reference=""; echo "== check-libtorch: THINGSvision could not be set up (see $build.thingsvision.log); zoo parity checks use forward hooks only"; }
echo "== check-libtorch: LibTorch from $prefix, references from $python${tv_reference:+, THINGSvision 2.7.3 from $build/thingsvision}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTHINGSVISION_WERROR=ON \
  -DCMAKE_PREFIX_PATH="$prefix" -DTHINGSVISION_PYTHON="$python" -DTHINGSVISION_REFERENCE_PATH="$tv_reference" "${cuda_args[@]}" "${linker_args[@]}" \
  ${TV_EXTRA_CMAKE_ARGS:-} >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log"; exit 1; }
grep -E "^-- (Found CUDA|PyTorch: CUDA detected|thingsvision)" "$build.configure.log" || true
cmake --build "$build" -j"$(nproc)"
"$build/tools/tv-extract" --version
if ((run_tests)); then
  ctest --test-dir "$build" --output-on-failure -j"$(nproc)" --timeout 900 "${ctest_args[@]}"
  # The installed tree finds this LibTorch too (the plugin's RUNPATH): the examples/ consumer and the
  # installed tv-extract run from it.
  echo "== check-libtorch: the installed tree and the examples/ consumer"
  install_dir=$(realpath -m "$build/install")
  rm -rf "$install_dir" "$build/examples" "$build/installed-run"
  cmake --install "$build" --prefix "$install_dir" >/dev/null
  scripts/check-examples.sh "$install_dir" "$build"
  "$install_dir/bin/tv-extract" --model "$build/examples/models/resnet18.pt" --module avgpool --images examples/images \
    --out "$build/installed-run" --quiet
  "$python" -c 'import sys, numpy as np; a, b = (np.load(f) for f in sys.argv[1:]); assert a.shape == b.shape and np.abs(a - b).max() <= 1e-5 * np.abs(b).max()' \
    "$build/installed-run/avgpool/features.npy" "$build/examples/out/avgpool/features.npy"
  echo "== check-libtorch: installed tv-extract and examples/ consumer agree"
fi
