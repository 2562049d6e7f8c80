#!/usr/bin/env bash
# tv-extract --images STORE.hdf5 --hdf5-key KEY [--indices ...] (issue #10 part 1): an HDF5 store of
# real photographs written by h5py gives the same features, byte for byte, as the same pixels stored
# as lossless PNG files (whose features cli_extract_reference checks against Python); file_names.txt
# lines are the indices; bad keys and indices are clear errors.
source "$(dirname "$0")/common.sh"

# The example photographs, resized by PIL to one size (an HDF5 image array has one shape), stored
# both as uint8 N×H×W×3 under "imgBrick" and as PNG files named after their indices.
"$TV_PYTHON" - "$EXAMPLES" "$WORK" <<'PY'
import os, sys
import h5py, numpy as np
from PIL import Image
examples, work = sys.argv[1], sys.argv[2]
names = sorted(n for n in os.listdir(examples) if n.lower().endswith(".jpg"))
arrays = [np.asarray(Image.open(os.path.join(examples, n)).convert("RGB").resize((240, 200)))
          for n in names]
os.makedirs(os.path.join(work, "png_all"))
os.makedirs(os.path.join(work, "png_2_5"))
for i, a in enumerate(arrays):
    Image.fromarray(a).save(os.path.join(work, "png_all", f"{i}.png"))
    if 2 <= i < 5:
        Image.fromarray(a).save(os.path.join(work, "png_2_5", f"{i}.png"))
with h5py.File(os.path.join(work, "stimuli.hdf5"), "w") as f:
    f.create_dataset("imgBrick", data=np.stack(arrays), chunks=(1, 200, 240, 3))
    f.create_dataset("floats", data=np.zeros((2, 4, 4, 3), np.float32))
PY
n=$(ls "$WORK/png_all" | wc -l)
[[ $n -ge 5 ]] || fail "expected at least 5 example images, found $n"

run() { "$TV_EXTRACT" --model "$TV_MODEL" --module layer1 --module avgpool --threads 2 --quiet "$@"; }

# Whole store vs PNG folder: identical features (PNG files sort as 0,1,...: fewer than 10 images).
[[ $n -lt 10 ]] || fail "test assumes fewer than 10 images"
expect_status 0 run --images "$WORK/stimuli.hdf5" --hdf5-key imgBrick --out "$WORK/h5_all" --batch-size 3
expect_status 0 run --images "$WORK/png_all" --out "$WORK/png_out" --batch-size 3
for m in layer1 avgpool; do
  cmp "$WORK/h5_all/$m/features.npy" "$WORK/png_out/$m/features.npy" \
    || fail "$m: HDF5 store features differ from the PNG files' features"
done
[[ "$(cat "$WORK/h5_all/file_names.txt")" == "$(seq 0 $((n - 1)))" ]] \
  || fail "file_names.txt of the store is not the indices 0..$((n - 1))"

# --indices A:B is end-exclusive (Python slicing): images 2, 3, 4.
expect_status 0 run --images "$WORK/stimuli.hdf5" --hdf5-key imgBrick --indices 2:5 --out "$WORK/h5_2_5"
expect_status 0 run --images "$WORK/png_2_5" --out "$WORK/png_2_5_out"
cmp "$WORK/h5_2_5/avgpool/features.npy" "$WORK/png_2_5_out/avgpool/features.npy" \
  || fail "--indices 2:5 features differ from images 2..4 as PNG files"
[[ "$(cat "$WORK/h5_2_5/file_names.txt")" == "$(printf '2\n3\n4')" ]] || fail "--indices 2:5 file_names.txt"

# Errors: one line naming the key, the dtype, the index; nothing written.
expect_error 1 "imgBrik" run --images "$WORK/stimuli.hdf5" --hdf5-key imgBrik --out "$WORK/e1"
expect_error 1 "floats" run --images "$WORK/stimuli.hdf5" --hdf5-key floats --out "$WORK/e2"
expect_error 2 "99" run --images "$WORK/stimuli.hdf5" --hdf5-key imgBrick --indices 0,99 --out "$WORK/e3"
for d in e1 e2 e3; do
  [[ -z "$(find "$WORK/$d" -name 'features*' 2>/dev/null)" ]] || fail "$d: a features file was written"
done
expect_error 2 "--hdf5-key" run --images "$WORK/png_all" --indices 0:2 --out "$WORK/e4"
echo "PASS: HDF5 image store"
