#!/usr/bin/env bash
# Installs the Debian 12 packages thingsvision-cpp needs; idempotent (does nothing when all are present).
#   scripts/install-deps.sh          build + run + model export (the quick start)
#   scripts/install-deps.sh --tests  also what the test suite needs (references, Octave, Slurm)
set -euo pipefail

build_packages=(
  cmake g++ make pkg-config
  libtorch-dev libopencv-dev libhdf5-dev libmatio-dev libeigen3-dev nlohmann-json3-dev
  libfmt-dev libcli11-dev libjpeg62-turbo-dev libpng-dev libtiff-dev libwebp-dev libicu-dev
  zlib1g-dev libgtest-dev libgmock-dev libbenchmark-dev
  # OpenBLAS becomes libblas.so.3 for LibTorch and numpy alike (else the slow reference BLAS).
  libopenblas0-pthread
  # Model export (models/export.py) runs with Debian's torch and torchvision.
  python3-torch python3-torchvision python3-numpy python3-pil
)
test_packages=(
  python3-scipy python3-h5py python3-onnx python3-protobuf opencv-doc octave
  slurmctld slurmd slurm-client munge
  # bench.sh (ctest bench.smoke) measures peak RSS with /usr/bin/time -v.
  time
)

packages=("${build_packages[@]}")
# ONNX Runtime (the onnxruntime backend, --backend onnxruntime) is packaged from Debian 13 on only.
if grep -q '^VERSION_CODENAME=trixie' /etc/os-release 2>/dev/null; then packages+=(libonnxruntime-dev); fi
if [[ "${1:-}" == "--tests" ]]; then packages+=("${test_packages[@]}"); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} Debian packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
