#!/usr/bin/env bash
# Quick start, command 1: install the Debian packages, build tv-extract, export a ResNet-18 (seeded
# random weights: pretrained weights need a network; see models/README.md) and extract its
# `layer4` and `avgpool` features for the images in examples/images into out/example/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target tv-extract tv-rsa
mkdir -p out/models
if [[ ! -f out/models/resnet18.pt ]]; then
  /usr/bin/python3 models/export.py --arch resnet18 --weights random --seed 0 --out out/models
fi
build/tools/tv-extract --model out/models/resnet18.pt --module layer4 --module avgpool \
  --images examples/images --out out/example --format npy --overwrite
build/tools/tv-rsa rdm out/example/avgpool/features.npy --method correlation \
  --out out/example/avgpool/rdm.npy --plot out/example/avgpool/rdm.png
echo "features: out/example/<module>/features.npy, names: out/example/file_names.txt, RDM: out/example/avgpool/rdm.png"
