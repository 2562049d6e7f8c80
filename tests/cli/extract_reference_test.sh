#!/bin/bash
# tv-extract against an independent PyTorch reference (torchvision transforms on PIL images, forward
# hooks with clone on the same weights): per image r >= 0.99999, max relative error <= 1e-4;
# file_names.txt per THINGSvision's rules (flat folder: names; class folders: root-prefixed paths).
source "$(dirname "$0")/common.sh"
MODULES=conv1,layer1.0.relu,layer4.1.relu,avgpool,fc
module_flags=(); IFS=, read -ra names <<<"$MODULES"; for m in "${names[@]}"; do module_flags+=(--module "$m"); done

# 1. examples/images (flat folder), npy, batches of 3 (the last one short)
"$TV_PYTHON" "$TV_REFERENCE" features --model "$TV_MODEL" --images "$EXAMPLES" --modules "$MODULES" \
  --out "$WORK/ref_examples" --batch-size 3
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" "${module_flags[@]}" --images "$EXAMPLES" \
  --out "$WORK/examples" --batch-size 3 --threads 2
grep -q "extracted 7 images" "$WORK/stderr" || fail "no summary line"
"$TV_PYTHON" "$TV_REFERENCE" compare "$WORK/ref_examples" "$WORK/examples" --modules "$MODULES"
"$TV_PYTHON" - "$WORK/examples/manifest.json" "$TV_MODEL" <<'PY'
import hashlib, json, sys
m = json.load(open(sys.argv[1]))
assert m["schema_version"] == 1 and m["status"] == "complete", m
assert m["model_sha256"] == hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
assert [x["name"] for x in m["modules"]] == "conv1,layer1.0.relu,layer4.1.relu,avgpool,fc".split(",")
assert m["modules"][0]["activation_shape"] == [64, 112, 112], m["modules"][0]
assert m["num_images"] == 7 and m["skipped"] == [] and "sidecar" in m["preprocessing_source"]
PY

# 2. opencv-doc photographs in class folders, hdf5, flattened, glob + module order kept
PHOTOS="$WORK/photos"
mkdir -p "$PHOTOS/animals" "$PHOTOS/things/more"
for f in baboon.jpg butterfly.jpg HappyFish.jpg messi5.jpg; do cp "$TV_OPENCV_DOC_DATA/$f" "$PHOTOS/animals/"; done
for f in aero1.jpg building.jpg home.jpg fruits.jpg; do cp "$TV_OPENCV_DOC_DATA/$f" "$PHOTOS/things/"; done
for f in chicky_512.png graf1.png board.jpg; do cp "$TV_OPENCV_DOC_DATA/$f" "$PHOTOS/things/more/"; done
"$TV_PYTHON" "$TV_REFERENCE" features --model "$TV_MODEL" --images "$PHOTOS" --modules layer3,avgpool \
  --out "$WORK/ref_photos" --flatten
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module 'layer3' --module 'avg*' --images "$PHOTOS" \
  --out "$WORK/photos_out" --format hdf5 --flatten --batch-size 4 --quiet
[[ ! -s "$WORK/stderr" ]] || fail "--quiet printed: $(cat "$WORK/stderr")"
"$TV_PYTHON" "$TV_REFERENCE" compare "$WORK/ref_photos" "$WORK/photos_out" --modules layer3,avgpool --format hdf5

# 3. --pool avg of layer4 equals the model's own avgpool (reference), rows of 512
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module layer4 --pool avg --images "$EXAMPLES" \
  --out "$WORK/pooled" --quiet
"$TV_PYTHON" - "$WORK/ref_examples/avgpool.npy" "$WORK/pooled/layer4/features.npy" <<'PY'
import numpy as np, sys
ref = np.load(sys.argv[1]).reshape(7, 512); got = np.load(sys.argv[2])
assert got.shape == (7, 512), got.shape
err = np.abs(got - ref).max() / np.abs(ref).max()
assert err <= 1e-5, err
PY
# 4. --pool max of layer4 = max over each channel of layer4.1.relu's (last-call) reference output
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module layer4 --pool max --images "$EXAMPLES" \
  --out "$WORK/maxpooled" --quiet
"$TV_PYTHON" - "$WORK/ref_examples/layer4.1.relu.npy" "$WORK/maxpooled/layer4/features.npy" <<'PY'
import numpy as np, sys
ref = np.load(sys.argv[1]).max(axis=(2, 3)); got = np.load(sys.argv[2])
assert got.shape == (7, 512) and np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()
PY

# 5. --token cls|avg|cls+avg on a ViT-shaped toy (no sidecar: the thingsvision preset)
TINY="$(dirname "$TV_MODEL")/tinyvit.pt"
"$TV_PYTHON" "$TV_REFERENCE" tokens --model "$TINY" --images "$EXAMPLES" --out "$WORK/ref_tokens"
for mode in cls avg cls+avg; do
  expect_status 0 "$TV_EXTRACT" --model "$TINY" --module norm --token "$mode" --images "$EXAMPLES" \
    --out "$WORK/tokens_$mode" --quiet --batch-size 4
  "$TV_PYTHON" - "$WORK/ref_tokens/$mode.npy" "$WORK/tokens_$mode/norm/features.npy" <<'PY'
import numpy as np, sys
ref = np.load(sys.argv[1]); got = np.load(sys.argv[2])
assert got.shape == ref.shape, (got.shape, ref.shape)
assert np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max(), np.abs(got - ref).max()
PY
done
# 7. --file-names: the listed images in the listed order
printf 'orange.jpg\napple.jpg\nfruits.jpg\n' >"$WORK/list.txt"
"$TV_PYTHON" "$TV_REFERENCE" features --model "$TV_MODEL" --images "$EXAMPLES" --modules avgpool \
  --out "$WORK/ref_list" --file-names "$WORK/list.txt"
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module avgpool --images "$EXAMPLES" --out "$WORK/list_out" \
  --file-names "$WORK/list.txt" --quiet
"$TV_PYTHON" "$TV_REFERENCE" compare "$WORK/ref_list" "$WORK/list_out" --modules avgpool

# 6. --format mat --mat-version 5 --mat-per-image: THINGSvision's layout, one variable per image
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$EXAMPLES" --out "$WORK/mat" \
  --format mat --mat-version 5 --mat-per-image --quiet
"$TV_PYTHON" - "$WORK/ref_examples" "$WORK/mat/fc/features.mat" <<'PY'
import numpy as np, scipy.io, sys
ref = np.load(sys.argv[1] + "/fc.npy")
names = [l.rstrip("\n").rsplit(".", 1)[0] for l in open(sys.argv[1] + "/file_names.txt")]
mat = scipy.io.loadmat(sys.argv[2])
for i, name in enumerate(names):
    got = np.asarray(mat[name]).ravel()
    assert np.abs(got - ref[i]).max() <= 1e-5 * np.abs(ref).max(), name
PY
echo "extract_reference: ok"
