#!/usr/bin/env bash
# Builds examples/ against an installed thingsvision (find_package) and compares its output with
# examples/*.expected.   scripts/check-examples.sh INSTALL_PREFIX BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(realpath "$1")
build=$(realpath "$2")
cmake -S examples -B "$build/examples" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build/examples" -j"$(nproc)"
mkdir -p "$build/examples/models"
[[ -f "$build/examples/models/resnet18.pt" ]] ||
  /usr/bin/python3 models/export.py --arch resnet18 --weights random --seed 0 --out "$build/examples/models" >/dev/null
"$build/examples/extract_features" "$build/examples/models/resnet18.pt" examples/images avgpool \
  >"$build/examples/extract_features.out"
if diff -u examples/extract_features.expected "$build/examples/extract_features.out"; then
  echo "examples: extract_features output as expected"
else
  echo "examples: extract_features output differs from examples/extract_features.expected" >&2
  exit 1
fi
