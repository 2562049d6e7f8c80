#!/usr/bin/env bash
# Packs a build of thingsvision-cpp for a GPU machine that has PyPI's torch but no Debian archive
# (issue #16; scripts/gpu-check.sh unpacks and runs it there). Run it here, on Debian 12:
#   scripts/gpu-bundle.sh [--venv DIR] [--build DIR] [--out FILE] [--no-build]
#     --venv DIR   the venv whose torch the bundle links (default .venv; made by scripts/setup-venv.sh).
#                  It must be the torch version of the GPU machine: gpu-check.sh refuses another. For
#                  the lent machines (torch 2.11.0+cu130 in 2026-11):
#                  TORCH_SPEC="torch==2.11.0 torchvision==0.26.0" scripts/setup-venv.sh .venv-gpu
#     --build DIR  build folder (default build-gpu); built by scripts/check-libtorch.sh --no-tests
#     --out FILE   the bundle (default .gpu-bundle/thingsvision-gpu.tar.xz; .gpu-bundle/ is ignored
#                  by git: name it in the device tool's `carry`)
#     --check-root DIR  then checks the bundle in DIR, a bare Debian root (debootstrap --variant=minbase,
#                  e.g. /work/roots/trixie.pristine): with only the bundle and the venv's torch mounted,
#                  ldd finds every library of every program, and tv-extract --version runs (needs root)
# What goes in: a build tree's layout (tools/tv-extract and its libexec/ program, tv-merge, the
# bench/ programs, tests/cuda_test, libthingsvision), stripped, plus lib/: every shared library they
# load that is neither glibc's, libstdc++/libgcc's nor the torch wheel's (OpenCV, HDF5, matio, fmt,
# ICU, ... with their dependencies, Debian 12's). The GPU machine supplies glibc >= 2.36, libstdc++
# and torch. BUNDLE.json records the torch version and the sizes; the script prints them.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
venv=$repo/.venv build=build-gpu out=$repo/.gpu-bundle/thingsvision-gpu.tar.xz do_build=1 check_root=
while (($#)); do
  case $1 in
    --venv) venv=$(cd "$2" && pwd); shift 2 ;;
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --check-root) check_root=$(cd "$2" && pwd); shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-bundle.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if ((do_build)); then
  TV_EXTRA_CMAKE_ARGS="-DTHINGSVISION_BUILD_BENCH=ON" scripts/check-libtorch.sh --venv "$venv" --build "$build" --no-tests
fi
build=$(cd "$build" && pwd)
torch_lib=$("$venv/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
torch_version=$("$venv/bin/python" -c 'import torch; print(torch.__version__)')
site=$(dirname "$(dirname "$torch_lib")")

stage=$(mktemp -d "${TMPDIR:-/tmp}/tv_gpu_bundle.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/thingsvision-gpu
programs=(tools/tv-extract libexec/thingsvision/tv-extract tools/tv-merge bench/forward_bench bench/decode_bench
          bench/rsa_bench bench/writer_bench tests/cuda_test)
for p in "${programs[@]}"; do
  [[ -x $build/$p ]] || { echo "gpu-bundle.sh: $build/$p is missing (built with -DTHINGSVISION_BUILD_BENCH=ON?)" >&2; exit 1; }
  mkdir -p "$root/$(dirname "$p")"
  cp "$build/$p" "$root/$p"
done
cp -P "$build"/libthingsvision.so* "$build"/libthingsvision_torch.so "$root/"
mkdir -p "$root/lib"
# The closure: what ldd resolves outside the torch wheel and the base system.
for f in "$root"/libthingsvision.so.* "$root"/libthingsvision_torch.so "${programs[@]/#/$root/}"; do
  [[ -L $f ]] && continue
  LD_LIBRARY_PATH=$build:$torch_lib ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
  case $lib in
    "$site"/*|"$build"/*) continue ;;  # the torch wheel (and nvidia-* wheels), our own library
  esac
  case $(basename "$lib") in
    libc.so.*|libm.so.*|libdl.so.*|librt.so.*|libpthread.so.*|ld-linux-*|libstdc++.so.*|libgcc_s.so.*) continue ;;
  esac
  cp -L "$lib" "$root/lib/"
done
find "$root" -type f \( -name '*.so*' -o -perm -u+x \) -exec strip --strip-unneeded {} + 2>/dev/null || true
unpacked=$(du -sb "$root" | cut -f1)
cat >"$root/BUNDLE.json" <<EOF
{"torch": "$torch_version", "built": "$(date -u +%Y-%m-%dT%H:%MZ)", "commit": "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)",
 "glibc": "$(ldd --version | head -n 1 | awk '{print $NF}')", "libraries": $(ls "$root/lib" | wc -l), "unpacked_bytes": $unpacked}
EOF
mkdir -p "$(dirname "$out")"
tar -C "$stage" -cf - thingsvision-gpu | xz -T0 -9 >"$out.tmp"
mv "$out.tmp" "$out"
echo "gpu-bundle.sh: $out: torch $torch_version, $(ls "$root/lib" | wc -l) libraries, $((unpacked / 1048576)) MiB unpacked, $(( $(stat -c %s "$out") / 1048576 )) MiB packed"

[[ -n $check_root ]] || exit 0
# The check: the bundle unpacked and the venv's site-packages bind-mounted into a bare root.
[[ -x $check_root/bin/bash ]] || { echo "gpu-bundle.sh: --check-root: '$check_root' is not a Debian root" >&2; exit 2; }
mnt_bundle=$check_root/opt/tv-bundle mnt_site=$check_root/opt/tv-site
mkdir -p "$mnt_bundle" "$mnt_site"
mounts=()
cleanup_mounts() { local m; for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done; rm -rf "$stage"; }
trap cleanup_mounts EXIT
mount --bind "$root" "$mnt_bundle" && mounts+=("$mnt_bundle")
mount --bind "$site" "$mnt_site" && mounts+=("$mnt_site")
if ! mountpoint -q "$check_root/proc"; then mount -t proc proc "$check_root/proc" && mounts+=("$check_root/proc"); fi
missing=0
for p in libthingsvision.so.0 libthingsvision_torch.so "${programs[@]}"; do
  out_ldd=$(chroot "$check_root" /usr/bin/env -i LD_LIBRARY_PATH=/opt/tv-bundle:/opt/tv-bundle/lib:/opt/tv-site/torch/lib \
    /usr/bin/ldd "/opt/tv-bundle/$p" 2>&1)
  if grep -q "not found" <<<"$out_ldd"; then
    echo "gpu-bundle.sh: in $check_root, $p lacks: $(grep 'not found' <<<"$out_ldd" | awk '{print $1}' | tr '\n' ' ')" >&2
    missing=1
  fi
done
version=$(chroot "$check_root" /usr/bin/env -i LD_LIBRARY_PATH=/opt/tv-bundle:/opt/tv-bundle/lib:/opt/tv-site/torch/lib \
  /opt/tv-bundle/tools/tv-extract --version 2>&1) || { echo "gpu-bundle.sh: tv-extract --version failed in $check_root: $version" >&2; missing=1; }
((missing == 0)) || exit 1
echo "gpu-bundle.sh: in the bare root $check_root ($(cat "$check_root/etc/debian_version" 2>/dev/null)), every library resolves; $version"
