#!/bin/bash
# --shard I/N (0-based, balanced by images) + tv-merge == one-process run, byte for byte;
# splits inside shards are joined by the merge. Missing/repeated shards are usage errors.
source "$(dirname "$0")/common.sh"
run() { "$TV_EXTRACT" --model "$TV_MODEL" --module layer3.1.relu --module avgpool \
          --images "$EXAMPLES" --batch-size 2 --quiet "$@"; }
expect_status 0 run --out "$WORK/full"
for i in 0 1 2; do expect_status 0 run --out "$WORK/shard_$i" --shard "$i/3"; done
[[ $(cat "$WORK/shard_0/file_names.txt" | wc -l) == 2 ]] || fail "shard 0/3 of 7 images should hold 2"
expect_status 0 "$TV_MERGE" "$WORK/shard_2" "$WORK/shard_0" "$WORK/shard_1" --out "$WORK/merged"
same_files "$WORK/full" "$WORK/merged"
# each merged module folder holds its file_names.txt, as a run's does
for m in layer3.1.relu avgpool; do
  cmp "$WORK/full/$m/file_names.txt" "$WORK/merged/$m/file_names.txt" || fail "merged $m/file_names.txt"
done
grep -q '"status": "complete"' "$WORK/merged/manifest.json" || fail "merged manifest"

# shards written as 2 splits each merge into the same single file
for i in 0 1; do expect_status 0 run --out "$WORK/split_$i" --shard "$i/2" --n-splits 2; done
expect_status 0 "$TV_MERGE" "$WORK/split_0" "$WORK/split_1" --out "$WORK/merged_splits"
same_files "$WORK/full" "$WORK/merged_splits"

# hdf5 shards: the merged files are byte-identical to the one-process run's (attributes are
# stored in name order by both), and the values equal
expect_status 0 run --out "$WORK/h_full" --format hdf5
for i in 0 1; do expect_status 0 run --out "$WORK/h_$i" --shard "$i/2" --format hdf5; done
expect_status 0 "$TV_MERGE" "$WORK/h_0" "$WORK/h_1" --out "$WORK/h_merged"
same_files "$WORK/h_full" "$WORK/h_merged"
for m in layer3.1.relu avgpool; do
  cmp "$WORK/h_full/$m/file_names.txt" "$WORK/h_merged/$m/file_names.txt" || fail "merged hdf5 $m/file_names.txt"
done
"$TV_PYTHON" - "$WORK/h_full" "$WORK/h_merged" <<'PY'
import h5py, numpy as np, sys
for m in ("layer3.1.relu", "avgpool"):
    with h5py.File(sys.argv[1] + "/" + m + "/features.hdf5", "r") as a, h5py.File(sys.argv[2] + "/" + m + "/features.hdf5", "r") as b:
        assert a["features"].dtype == b["features"].dtype and np.array_equal(a["features"][()], b["features"][()]), m
PY
# the merged hdf5 files keep the shards' provenance attributes (equal in both shards: kept as is)
"$TV_PYTHON" - "$WORK/h_0" "$WORK/h_1" "$WORK/h_merged" <<'PY'
import h5py, sys
for m in ("layer3.1.relu", "avgpool"):
    attrs = []
    for d in sys.argv[1:]:
        with h5py.File(d + "/" + m + "/features.hdf5", "r") as f:
            attrs.append(dict(f.attrs))
    assert {"model", "model_sha256", "module", "preprocessing"} <= set(attrs[0]), (m, sorted(attrs[0]))
    assert attrs[0]["module"] == m and len(attrs[0]["model_sha256"]) == 64, (m, attrs[0])
    assert attrs[0] == attrs[1] == attrs[2], (m, attrs)
PY

# --mat-per-image shards (one variable per image, no 'features'): MAT 5 merges byte for byte into
# the one-process run; MAT 7.3 shards of 2 splits merge to the same variables (scipy vs h5py)
mp() { run --format mat --mat-per-image "$@"; }
expect_status 0 mp --out "$WORK/p_full" --mat-version 5
for i in 0 1; do expect_status 0 mp --out "$WORK/p_$i" --shard "$i/2" --mat-version 5; done
expect_status 0 "$TV_MERGE" "$WORK/p_0" "$WORK/p_1" --out "$WORK/p_merged"
same_files "$WORK/p_full" "$WORK/p_merged"
for i in 0 1; do expect_status 0 mp --out "$WORK/q_$i" --shard "$i/2" --n-splits 2; done
expect_status 0 "$TV_MERGE" "$WORK/q_0" "$WORK/q_1" --out "$WORK/q_merged"
"$TV_PYTHON" - "$WORK/p_full" "$WORK/q_merged" <<'PY'
import h5py, numpy as np, scipy.io, sys
for m in ("layer3.1.relu", "avgpool"):
    a = {k: v for k, v in scipy.io.loadmat(sys.argv[1] + "/" + m + "/features.mat").items() if not k.startswith("__")}
    with h5py.File(sys.argv[2] + "/" + m + "/features.mat", "r") as f:
        assert "features" not in f and sorted(f) == sorted(a), (m, sorted(f), sorted(a))
        for k, v in a.items():
            assert f[k].dtype == v.dtype and np.array_equal(f[k][()].T, v), (m, k)
PY

# shards are balanced by images whatever the batch size (sizes differ by at most one); a shard
# without images is a finished result that merges: 7 images in 5 shards with the default batch size
# (32), and in 9 shards (two of them empty)
run32() { "$TV_EXTRACT" --model "$TV_MODEL" --module layer3.1.relu --module avgpool --images "$EXAMPLES" --quiet "$@"; }
expect_status 0 run32 --out "$WORK/full32"
for n in 5 9; do
  sizes=()
  for ((i = 0; i < n; i++)); do
    expect_status 0 run32 --out "$WORK/of${n}_$i" --shard "$i/$n"
    grep -q '"status": "complete"' "$WORK/of${n}_$i/manifest.json" || fail "shard $i/$n is not complete"
    sizes+=("$(wc -l <"$WORK/of${n}_$i/file_names.txt")")
  done
  sorted=($(printf '%s\n' "${sizes[@]}" | sort -n))
  (( sorted[n - 1] - sorted[0] <= 1 )) || fail "$n shards of 7 images: sizes ${sizes[*]}"
  expect_status 0 "$TV_MERGE" "$WORK"/of${n}_* --out "$WORK/merged_of$n"
  same_files "$WORK/full32" "$WORK/merged_of$n"
done
expect_status 0 "$TV_EXTRACT" --help
grep -q "balanced by images" "$WORK/stdout" || fail "--help does not say how shards are cut"
[[ ! -s "$WORK/of9_0/file_names.txt" && -d "$WORK/of9_0/avgpool" ]] || fail "shard 0/9 should be empty"
! ls "$WORK"/of9_0/avgpool/features* >/dev/null 2>&1 || fail "an empty shard wrote a features file"
"$TV_PYTHON" -c "import json, sys; m = json.load(open(sys.argv[1])); assert m['num_images'] == 0, m['num_images']" \
  "$WORK/of9_0/manifest.json" || fail "empty shard manifest"
expect_status 0 run32 --out "$WORK/of9_0" --shard 0/9 --resume  # finished: nothing to do

expect_error 2 "shard 1/3 is missing" "$TV_MERGE" "$WORK/shard_0" "$WORK/shard_2" --out "$WORK/m2"
expect_error 2 "given twice" "$TV_MERGE" "$WORK/shard_0" "$WORK/shard_0" "$WORK/shard_1" --out "$WORK/m3"
expect_error 2 "already holds" "$TV_MERGE" "$WORK/shard_0" "$WORK/shard_1" "$WORK/shard_2" --out "$WORK/merged"
expect_error 2 "differ in" "$TV_MERGE" "$WORK/shard_0" "$WORK/split_1" --out "$WORK/m4"
expect_error 1 "holds no manifest.json" "$TV_MERGE" "$EXAMPLES" --out "$WORK/m5"
expect_error 2 "--shard" run --out "$WORK/bad" --shard 3/3
expect_error 2 "--shard" run --out "$WORK/bad" --shard 1-3
echo "shard_merge: ok"
