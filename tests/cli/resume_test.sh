#!/bin/bash
# Kill -9 (the TV_FAULT_AFTER_BATCHES hook raises SIGKILL) at several points, then --resume: the
# result is byte-identical to an uninterrupted run. SIGTERM stops cleanly with a --resume hint.
source "$(dirname "$0")/common.sh"
run() { "$TV_EXTRACT" --model "$TV_MODEL" --module layer4.0 --module avgpool --module fc \
          --images "$EXAMPLES" --batch-size 2 --quiet "$@"; }
expect_status 0 run --out "$WORK/full"
expect_status 0 run --out "$WORK/full_split" --n-splits 2
# manifest.json's timing: every part >= 0, the forward passes and the waits inside extract_seconds,
# which with the load stays within the total
"$TV_PYTHON" - "$WORK/full/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); t = m["timing"]
keys = ["load_seconds", "extract_seconds", "forward_seconds", "input_wait_seconds", "write_seconds"]
assert all(isinstance(t[k], float) and t[k] >= 0 for k in keys), t
assert t["forward_seconds"] > 0 and t["load_seconds"] > 0, t
parts = t["forward_seconds"] + t["input_wait_seconds"] + t["write_seconds"]
assert parts <= t["extract_seconds"] * 1.001 + 1e-3, t
assert t["load_seconds"] + t["extract_seconds"] <= m["seconds"] * 1.001 + 1e-3, (t, m["seconds"])
# optimized by default; this model's optimized graph agrees within 1e-5 and is kept
o = m["optimization"]
assert len(o) == 1 and o[0]["modules"] == ["layer4.0", "avgpool", "fc"] and o[0]["graph"] == "optimized", o
assert "(within 1e-05)" in o[0]["reason"], o
PY
# --no-optimize: the plain graph, recorded as such, with the same features within 1e-5 relative
expect_status 0 run --out "$WORK/plain" --no-optimize
"$TV_PYTHON" - "$WORK/full" "$WORK/plain" <<'PY'
import json, sys
import numpy as np
m = json.load(open(sys.argv[2] + "/manifest.json"))
assert m["optimization"] == [{"modules": ["layer4.0", "avgpool", "fc"], "graph": "plain",
                              "reason": "--no-optimize"}], m["optimization"]
for d in ["layer4.0", "avgpool", "fc"]:
    a = np.load(f"{sys.argv[1]}/{d}/features.npy"); b = np.load(f"{sys.argv[2]}/{d}/features.npy")
    assert a.shape == b.shape and np.abs(a - b).max() <= 1e-5 * np.abs(b).max(), d
PY

for point in "batch 1" "module 2" "commit 4"; do
  read -r stage k <<<"$point"
  out="$WORK/kill_${stage}_$k"
  rc=0; TV_FAULT_STAGE=$stage TV_FAULT_AFTER_BATCHES=$k run --out "$out" >/dev/null 2>&1 || rc=$?
  [[ $rc == 137 ]] || fail "fault $point: exit $rc, expected 137 (SIGKILL)"
  [[ ! -f "$out/file_names.txt" ]] || [[ $stage == commit ]] || fail "fault $point: file_names.txt before the end"
  # without --resume the unfinished directory is refused, naming both ways out
  expect_error 2 "--resume" run --out "$out"
  expect_status 0 run --out "$out" --resume
  same_files "$WORK/full" "$out"
done

# kill twice in a row, with splits
out="$WORK/kill_twice"
rc=0; TV_FAULT_AFTER_BATCHES=1 run --out "$out" --n-splits 2 >/dev/null 2>&1 || rc=$?; [[ $rc == 137 ]] || fail "first kill: $rc"
rc=0; TV_FAULT_AFTER_BATCHES=1 run --out "$out" --n-splits 2 --resume >/dev/null 2>&1 || rc=$?; [[ $rc == 137 ]] || fail "second kill: $rc"
expect_status 0 run --out "$out" --n-splits 2 --resume
same_files "$WORK/full_split" "$out"

# SIGTERM (as Slurm sends at the time limit): finish the batch, keep the state, exit 1, say --resume
out="$WORK/term"
expect_error 1 "run the same command with --resume to continue" env TV_FAULT_STAGE=sigterm TV_FAULT_AFTER_BATCHES=2 \
  "$TV_EXTRACT" --model "$TV_MODEL" --module layer4.0 --module avgpool --module fc --images "$EXAMPLES" \
  --batch-size 2 --quiet --out "$out"
grep -qF "SIGTERM after 4 of 7 images" "$WORK/stderr" || fail "SIGTERM message: $(cat "$WORK/stderr")"
expect_status 0 run --out "$out" --resume
same_files "$WORK/full" "$out"

# the summary after --resume says how many images were done before and rates only the new ones
out="$WORK/resumed_summary"
rc=0; TV_FAULT_AFTER_BATCHES=2 run --out "$out" >/dev/null 2>&1 || rc=$?; [[ $rc == 137 ]] || fail "kill: $rc"
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module layer4.0 --module avgpool --module fc --images "$EXAMPLES" \
  --batch-size 2 --out "$out" --resume
grep -qE '^tv-extract: extracted 7 images \(4 done before, 3 now\) × 3 outputs in [0-9.]+ s \([0-9.]+ images/s over the 3 new after a [0-9.]+ s model load\)' \
  "$WORK/stderr" || fail "resume summary: $(cat "$WORK/stderr")"
same_files "$WORK/full" "$out"

# resuming with other options is refused, naming the option
rc=0; TV_FAULT_AFTER_BATCHES=1 run --out "$WORK/other" >/dev/null 2>&1 || rc=$?
expect_error 2 "--batch-size" "$TV_EXTRACT" --model "$TV_MODEL" --module layer4.0 --module avgpool --module fc \
  --images "$EXAMPLES" --batch-size 3 --quiet --out "$WORK/other" --resume
# --backend is recorded (resolved: libtorch for a .pt) and compared; a manifest from before it was
# recorded (no "backend") resumes
"$TV_PYTHON" -c 'import json, sys; m = json.load(open(sys.argv[1])); assert m["backend"] == "libtorch", m["backend"]' \
  "$WORK/full/manifest.json" || fail "manifest.json does not record the backend libtorch"
"$TV_PYTHON" -c 'import json, sys; m = json.load(open(sys.argv[1])); m["backend"] = "onnxruntime"; json.dump(m, open(sys.argv[1], "w"))' \
  "$WORK/other/manifest.json"
expect_error 2 "differs in --backend (onnxruntime vs libtorch)" run --out "$WORK/other" --resume
"$TV_PYTHON" -c 'import json, sys; m = json.load(open(sys.argv[1])); del m["backend"]; json.dump(m, open(sys.argv[1], "w"))' \
  "$WORK/other/manifest.json"
expect_status 0 run --out "$WORK/other" --resume
# a shard whose image range differs (e.g. cut by an older version at batch boundaries) is refused
rc=0; TV_FAULT_AFTER_BATCHES=1 run --out "$WORK/old_cut" --shard 0/2 >/dev/null 2>&1 || rc=$?; [[ $rc == 137 ]] || fail "kill: $rc"
"$TV_PYTHON" -c 'import json, sys; m = json.load(open(sys.argv[1])); m["last_image"] = 2; json.dump(m, open(sys.argv[1], "w"))' \
  "$WORK/old_cut/manifest.json"
expect_error 2 "differs in the images of the shard (0..2 vs 0..3)" run --out "$WORK/old_cut" --shard 0/2 --resume
# --resume on a finished directory has nothing to do
expect_status 0 run --out "$WORK/full" --resume
echo "resume: ok"
