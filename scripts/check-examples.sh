#!/usr/bin/env bash
# Builds examples/ against an installed thingsvision, or a build tree (find_package either way), and
# compares its output with examples/*.expected.   scripts/check-examples.sh INSTALL_PREFIX|BUILD_TREE BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(realpath "$1")
build=$(realpath "$2")
cmake -S examples -B "$build/examples" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build/examples" -j"$(nproc)"
mkdir -p "$build/examples/models"
[[ -f "$build/examples/models/resnet18.pt" ]] ||
  /usr/bin/python3 models/export.py --arch resnet18 --weights random --seed 0 --out "$build/examples/models" >/dev/null
rm -rf "$build/examples/out"
"$build/examples/extract_features" "$build/examples/models/resnet18.pt" examples/images avgpool "$build/examples/out" \
  >"$build/examples/extract_features.out"
/usr/bin/python3 -c 'import sys, numpy as np; x = np.load(sys.argv[1]); assert x.shape == (7, 512, 1, 1), x.shape' \
  "$build/examples/out/avgpool/features.npy" || { echo "examples: features.npy is not 7 x 512 x 1 x 1" >&2; exit 1; }
cmp <(ls examples/images | grep -v '^README' ) "$build/examples/out/avgpool/file_names.txt" >/dev/null ||
  { echo "examples: file_names.txt does not list the images" >&2; exit 1; }
if diff -u examples/extract_features.expected "$build/examples/extract_features.out"; then
  echo "examples: extract_features output as expected"
else
  echo "examples: extract_features output differs from examples/extract_features.expected" >&2
  exit 1
fi
