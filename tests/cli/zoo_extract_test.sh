#!/usr/bin/env bash
# tv-extract on the model zoo (issue #7): a representative set of models/export.py exports (random
# weights) runs on two images for the first and last suggested module; CORnet-R/RT/S with
# --all-calls give every call of a repeated module, the last equal to the default (last-call) run.
# The full list is scripts/export_all.sh OUT --extract TV_EXTRACT IMAGES (manual).
source "$(dirname "$0")/common.sh"
mkdir -p "$WORK/images" "$WORK/models"
cp "$EXAMPLES/apple.jpg" "$EXAMPLES/baboon.jpg" "$WORK/images/"

suggested() {  # suggested() JSON INDEX: the sidecar's suggested module number INDEX (0, or -1 = last)
  "$TV_PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["suggested_modules"][int(sys.argv[2])])' "$1" "$2"
}

for arch in resnet18 squeezenet1_1 mobilenet_v3_small shufflenet_v2_x0_5 mnasnet0_5 efficientnet_b0 \
            regnet_x_400mf densenet121 googlenet convnext_tiny vit_b_32 cornet_z cornet_r cornet_rt cornet_s; do
  expect_status 0 "$TV_PYTHON" "$TV_SOURCE_DIR/models/export.py" --arch "$arch" --weights random \
    --seed 0 --out "$WORK/models"
  first=$(suggested "$WORK/models/$arch.json" 0)
  last=$(suggested "$WORK/models/$arch.json" -1)
  expect_status 0 "$TV_EXTRACT" --model "$WORK/models/$arch.pt" --module "$first" --module "$last" \
    --images "$WORK/images" --out "$WORK/out_$arch" --threads 2 --quiet
  n=$("$TV_PYTHON" -c 'import numpy,sys; print(numpy.load(sys.argv[1]).shape[0])' \
      "$(find "$WORK/out_$arch" -name features.npy | head -n 1)")
  [[ $n == 2 ]] || fail "$arch: $n rows, expected 2"
  echo "ok: $arch ($first, $last)"
done

# Repeated modules: every call, the last equal to the default run, byte for byte.
check_calls() {  # check_calls ARCH MODULE MIN_CALLS
  local arch=$1 module=$2 min=$3
  expect_status 0 "$TV_EXTRACT" --model "$WORK/models/$arch.pt" --module "$module" --all-calls \
    --images "$WORK/images" --out "$WORK/calls_$arch" --threads 2 --quiet
  expect_status 0 "$TV_EXTRACT" --model "$WORK/models/$arch.pt" --module "$module" \
    --images "$WORK/images" --out "$WORK/last_$arch" --threads 2 --quiet
  local calls
  calls=$(cd "$WORK/calls_$arch/$module" && ls -d call_* | sort -t_ -k2 -n)
  local count last
  count=$(wc -w <<<"$calls")
  [[ $count -ge $min ]] || fail "$arch $module: $count calls with --all-calls, expected >= $min"
  last=$(tail -n 1 <<<"$calls")
  cmp "$WORK/calls_$arch/$module/$last/features.npy" "$WORK/last_$arch/$module/features.npy" \
    || fail "$arch $module: the last of --all-calls differs from the default run"
  first=$(head -n 1 <<<"$calls")
  ! cmp -s "$WORK/calls_$arch/$module/$first/features.npy" "$WORK/last_$arch/$module/features.npy" \
    || fail "$arch $module: the first call equals the last: time steps are not distinct"
  echo "ok: $arch $module: $count calls"
}
check_calls cornet_r V2 5
check_calls cornet_rt IT 5
check_calls cornet_s V4.output 2
echo "PASS: zoo extraction"
