#!/bin/bash
# Exit codes (0 done, 1 runtime failure, 2 usage) and one-line messages naming the flag, file or module.
source "$(dirname "$0")/common.sh"
expect_status 0 "$TV_EXTRACT" --version
grep -q "^tv-extract " "$WORK/stdout" || fail "--version"
expect_status 0 "$TV_EXTRACT" --help
grep -q "Exit codes" "$WORK/stdout" || fail "--help lacks the exit codes"
expect_status 0 "$TV_MERGE" --version

expect_error 2 "--model" "$TV_EXTRACT" --module fc --images "$EXAMPLES" --out "$WORK/o"
expect_error 2 "--model: no such file '$WORK/none.pt'" "$TV_EXTRACT" --model "$WORK/none.pt" --module fc --images "$EXAMPLES" --out "$WORK/o"
expect_error 2 "--images: no such directory" "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$WORK/none" --out "$WORK/o"
expect_error 2 "--out is required" "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$EXAMPLES"
expect_error 2 "--module is required" "$TV_EXTRACT" --model "$TV_MODEL" --images "$EXAMPLES" --out "$WORK/o" </dev/null
# an unknown module name is a usage error, as a glob that matches nothing is
expect_error 2 "error: module 'layer5' not found in resnet18.pt; closest: layer1, layer2, layer3, layer4, layer1.0" \
  "$TV_EXTRACT" --model "$TV_MODEL" --module layer5 --images "$EXAMPLES" --out "$WORK/o"
expect_error 2 "--module: pattern 'block*'" "$TV_EXTRACT" --model "$TV_MODEL" --module 'block*' --images "$EXAMPLES" --out "$WORK/o"
expect_error 2 "--format" "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$EXAMPLES" --out "$WORK/o" --format csv
# choices: names only (no numbers), one message listing them; --help lists the names and the default
for choice in "--format|h5|npy, hdf5, mat, txt" "--format|1|npy, hdf5, mat, txt" "--dtype|double|float32, float16, float64" \
              "--mat-version|7|7.3, 5" "--interpolation|nearest|bilinear, bicubic, tf_bilinear" \
              "--layout|nhwc|native, nchw" "--pool|mean|none, avg, max"; do
  IFS='|' read -r flag value names <<<"$choice"
  expect_error 2 "error: $flag must be one of $names (got '$value')" \
    "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$EXAMPLES" --out "$WORK/choice" "$flag" "$value"
done
[[ ! -e "$WORK/choice" ]] || fail "a refused choice left an output"
expect_status 0 "$TV_EXTRACT" --format HDF5 --help
! grep -qF -- '->' "$WORK/stdout" || fail "--help shows choice internals: $(grep -F -- '->' "$WORK/stdout")"
for text in "npy | hdf5 | mat | txt (default npy)" "float32 | float16 | float64 (default float32)" \
            "7.3 | 5 (default 7.3)" "none | avg | max (default none)" "native | nchw (default native)"; do
  grep -qF -- "$text" "$WORK/stdout" || fail "--help lacks '$text'"
done
expect_error 2 "--batch-size" "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$EXAMPLES" --out "$WORK/o" --batch-size 0
expect_error 2 "--device" "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$EXAMPLES" --out "$WORK/o" --device gpu
expect_error 2 "--mean" "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$EXAMPLES" --out "$WORK/o" --mean 0.5,0.5
expect_error 2 "--pool" "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$EXAMPLES" --out "$WORK/o" --pool mean
expect_error 2 "--overwrite" "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$EXAMPLES" --out "$WORK/o" --resume --overwrite
expect_error 2 "--preset" "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$EXAMPLES" --out "$WORK/o" --preset nope
# CUDA where there is none is an error naming the device, never a silent CPU fallback
if ! nvidia-smi >/dev/null 2>&1; then
  expect_error 1 "cuda:1" "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$EXAMPLES" --out "$WORK/o" --device cuda:1
fi
printf 'not a model' >"$WORK/fake.pt"
expect_error 1 "fake.pt" "$TV_EXTRACT" --model "$WORK/fake.pt" --module fc --images "$EXAMPLES" --out "$WORK/o"
[[ ! -e "$WORK/o/manifest.json" ]] || fail "a failed run left a manifest"

# the disk-space estimate (TV_FAKE_FREE_BYTES pretends the disk has 1 MB free)
expect_error 1 "--out: the features need about" env TV_FAKE_FREE_BYTES=1000000 \
  "$TV_EXTRACT" --model "$TV_MODEL" --module conv1 --images "$EXAMPLES" --out "$WORK/small_disk"
grep -qF -- "--no-space-check" "$WORK/stderr" || fail "the disk message does not name the way out"
[[ ! -e "$WORK/small_disk/manifest.json" ]] || fail "refused run left a manifest"
expect_status 0 env TV_FAKE_FREE_BYTES=1000000 "$TV_EXTRACT" --model "$TV_MODEL" --module avgpool \
  --images "$EXAMPLES" --out "$WORK/small_disk" --quiet

# HDF5 attributes name this tool's version (thingsvision_cpp_version); the manifest keeps --mean as given
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module avgpool --images "$EXAMPLES" --out "$WORK/h5" --quiet \
  --format hdf5 --mean 0.485,0.456,0.406
"$TV_PYTHON" - "$WORK/h5" <<'PY' || fail "hdf5 attributes / manifest mean"
import json, sys, h5py
attrs = h5py.File(sys.argv[1] + "/avgpool/features.hdf5").attrs
assert "thingsvision_cpp_version" in attrs and "thingsvision_version" not in attrs, list(attrs)
mean = json.load(open(sys.argv[1] + "/manifest.json"))["mean_rgb"]
assert mean == [0.485, 0.456, 0.406], mean
PY
expect_status 0 "$TV_EXTRACT" --help
grep -q "scipy.io.loadmat" "$WORK/stdout" || fail "--help does not say which MAT version scipy.io.loadmat reads"

# a finished directory is refused, --overwrite replaces it
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$EXAMPLES" --out "$WORK/done" --quiet
expect_error 2 "holds a finished extraction; pass --overwrite" \
  "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$EXAMPLES" --out "$WORK/done"
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module avgpool --images "$EXAMPLES" --out "$WORK/done" --overwrite --quiet
[[ -f "$WORK/done/avgpool/features.npy" && ! -e "$WORK/done/fc" ]] || fail "--overwrite left the old module"

# --list-modules: name, type, output shape for one image; --show-model: the tree
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --list-modules
grep -qP '^layer4\.1\.relu\tReLU\t\(512, 7, 7\)$' "$WORK/stdout" || { cat "$WORK/stdout"; fail "--list-modules"; }
grep -qP '^fc\tLinear\t\(1000\)$' "$WORK/stdout" || fail "--list-modules fc"
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --show-model
grep -q "(layer4): Sequential" "$WORK/stdout" || fail "--show-model"
expect_error 2 "" "$TV_EXTRACT" --model "$TV_MODEL" --show-model --list-modules

# --all-calls: layer1.0.relu is called twice per forward pass
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module layer1.0.relu --all-calls --images "$EXAMPLES" --out "$WORK/calls" --quiet
[[ -f "$WORK/calls/layer1.0.relu/call_0/features.npy" && -f "$WORK/calls/layer1.0.relu/call_1/features.npy" ]] || fail "--all-calls"
# --random-projection: rows of K, reproducible with the seed
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module layer4 --random-projection 16 --seed 3 --images "$EXAMPLES" --out "$WORK/rp1" --quiet
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module layer4 --random-projection 16 --seed 3 --images "$EXAMPLES" --out "$WORK/rp2" --quiet
cmp "$WORK/rp1/layer4/features.npy" "$WORK/rp2/layer4/features.npy" || fail "projection not reproducible"
"$TV_PYTHON" -c "import numpy as np; assert np.load('$WORK/rp1/layer4/features.npy').shape == (7, 16)"
# On a terminal: no --module → the module tree and a prompt; a progress line and the summary
"$TV_PYTHON" - "$TV_EXTRACT" "$TV_MODEL" "$EXAMPLES" "$WORK/prompted" <<'PY'
import os, pty, subprocess, sys
tool, model, images, out = sys.argv[1:]
master, slave = pty.openpty()
p = subprocess.Popen([tool, "--model", model, "--images", images, "--out", out],
                     stdin=slave, stdout=slave, stderr=slave, close_fds=True)
os.close(slave)
os.write(master, b"fc avgpool\n")
text = b""
while True:
    try:
        chunk = os.read(master, 65536)
    except OSError:
        break
    if not chunk:
        break
    text += chunk
assert p.wait(timeout=300) == 0, text.decode(errors="replace")
text = text.decode(errors="replace")
assert "(layer4): Sequential" in text and "module(s) to extract" in text, text
assert "7/7 images" in text and "extracted 7 images" in text, text
assert sorted(os.listdir(out)) == ["avgpool", "fc", "file_names.txt", "manifest.json"], os.listdir(out)
PY

# examples/extract_models.sh: one run per model, modules given or the sidecar's suggested_modules
mkdir -p "$WORK/zoo" && cp "$TV_MODEL" "$WORK/zoo/other.pt" && cp "${TV_MODEL%.pt}.json" "$WORK/zoo/other.json"
expect_status 0 env TV_EXTRACT="$TV_EXTRACT" TV_EXTRACT_ARGS=--quiet bash "$TV_SOURCE_DIR/examples/extract_models.sh" \
  "$EXAMPLES" "$WORK/models" "$TV_MODEL:fc,avgpool" "$WORK/zoo/other.pt"
for f in resnet18/fc resnet18/avgpool other/layer4 other/avgpool; do
  [[ -f "$WORK/models/$f/features.npy" ]] || fail "extract_models.sh: no $f"
done
# run again: finished runs are kept (--resume has nothing to do); other modules into a finished one are refused
expect_status 0 env TV_EXTRACT="$TV_EXTRACT" bash "$TV_SOURCE_DIR/examples/extract_models.sh" "$EXAMPLES" "$WORK/models" "$TV_MODEL:fc,avgpool"
grep -q "already complete" "$WORK/stderr" || fail "second run did not find the finished run"
expect_status 1 env TV_EXTRACT="$TV_EXTRACT" bash "$TV_SOURCE_DIR/examples/extract_models.sh" "$EXAMPLES" "$WORK/models" "$TV_MODEL:fc"
grep -q "differs in --module" "$WORK/stderr" || fail "changed modules were not refused"
echo "usage: ok"
