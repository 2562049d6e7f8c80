#!/bin/bash
# Archives as users save them, by the torch of this platform (Debian 12: 1.13, Debian 13: 2.6, the
# PyPI venv: 2.x): torchvision ARCH with seeded random weights, scripted and traced, saved by plain
# torch.jit.save (no sidecar, no extra files). tv-extract with every default (optimize on) must give
# each module's forward-hook output of the eager model within 1e-5 x max|ref| per image, finish
# within 240 s (the optimize step once hung on LibTorch 2.6), and with --signal: SIGTERM/SIGINT while
# the model loads end it within 2 s, exit 1, nothing written, and the same command then finishes.
#   torch_archives_test.sh ARCH MODULE,MODULE,... [--signal | --sets=SET:SET...]
# --sets: further module sets (comma lists of modules from the first) run on the scripted archive,
# each under the same time limit and compared with the same reference.
source "$(dirname "$0")/common.sh"
ARCH=$1 MODULES=$2 SIGNAL=${3:-}
flags_of() { local m names; IFS=, read -ra names <<<"$1"; module_flags=(); for m in "${names[@]}"; do module_flags+=(--module "$m"); done; }
flags_of "$MODULES"

"$TV_PYTHON" "$TV_REFERENCE" features --model "$WORK/never" --arch x --images x --modules x --out x \
  >/dev/null 2>&1 && fail "reference accepted a missing model"
for mode in script trace; do
  "$TV_PYTHON" -W ignore "$TV_REFERENCE" export-torchvision --arch "$ARCH" --mode "$mode" --out "$WORK/$ARCH.$mode.pt"
done
# One reference for both archives: they hold the same weights (the eager model gets them from each).
"$TV_PYTHON" -W ignore "$TV_REFERENCE" features --model "$WORK/$ARCH.script.pt" --arch "$ARCH" \
  --images "$EXAMPLES" --modules "$MODULES" --out "$WORK/ref" --batch-size 4

for mode in script trace; do
  model="$WORK/$ARCH.$mode.pt" out="$WORK/out_$mode"
  start=$(date +%s)
  expect_status 0 timeout -s KILL 600 "$TV_EXTRACT" --model "$model" "${module_flags[@]}" \
    --images "$EXAMPLES" --out "$out" --batch-size 4 --threads 2
  echo "$ARCH $mode: $(($(date +%s) - start)) s: $(tail -1 "$WORK/stderr")"
  "$TV_PYTHON" "$TV_REFERENCE" compare "$WORK/ref" "$out" --modules "$MODULES" --tolerance 1e-5 \
    || fail "$ARCH $mode: features differ from the forward hooks"
  "$TV_PYTHON" - "$out/manifest.json" <<'PY' || fail "$ARCH $mode: manifest"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["status"] == "complete", m["status"]
assert m["optimization"][0]["reason"] != "--no-optimize", m["optimization"]
print("optimization:", m["optimization"][0]["graph"], "-", m["optimization"][0]["reason"])
PY
done

if [[ $SIGNAL == --sets=* ]]; then
  IFS=: read -ra sets <<<"${SIGNAL#--sets=}"
  for set in "${sets[@]}"; do
    flags_of "$set"
    out="$WORK/set_${#set}"
    rm -rf "$out"
    start=$(date +%s)
    expect_status 0 timeout -s KILL 600 "$TV_EXTRACT" --model "$WORK/$ARCH.script.pt" "${module_flags[@]}" \
      --images "$EXAMPLES" --out "$out" --batch-size 4 --threads 2
    echo "$ARCH modules $set: $(($(date +%s) - start)) s"
    "$TV_PYTHON" "$TV_REFERENCE" compare "$WORK/ref" "$out" --modules "$set" --tolerance 1e-5 \
      || fail "$ARCH modules $set: features differ from the forward hooks"
  done
fi

if [[ $SIGNAL == --signal ]]; then
  model="$WORK/$ARCH.script.pt"
  for sig in TERM INT; do
    out="$WORK/signal_$sig"
    rc=0
    ready="$WORK/ready_$sig"
    TV_TEST_STOP_HANDLERS_READY=$ready "$TV_EXTRACT" --model "$model" "${module_flags[@]}" --images "$EXAMPLES" \
      --out "$out" --threads 2 >"$WORK/stdout" 2>"$WORK/stderr" &
    pid=$!
    # Once the handlers are in place (after process start and library loading) the model loads.
    for ((i = 0; i < 600; i++)); do [[ -e $ready ]] && break; sleep 0.05; done
    [[ -e $ready ]] || fail "SIG$sig: tv-extract never installed its stop handlers"
    sleep 0.5
    kill -0 "$pid" 2>/dev/null || fail "SIG$sig: tv-extract ended before the signal (too fast to test)"
    sent=$(date +%s%N)
    kill -s "$sig" "$pid"
    wait "$pid" || rc=$?
    ms=$((($(date +%s%N) - sent) / 1000000))
    echo "SIG$sig during preparation: exit $rc after $ms ms: $(cat "$WORK/stderr")"
    [[ $rc == 1 ]] || fail "SIG$sig: exit code $rc, expected 1"
    ((ms <= 2000)) || fail "SIG$sig: took $ms ms to stop"
    grep -q "stopped by SIG$sig while preparing the run" "$WORK/stderr" || fail "SIG$sig: no stop message"
    [[ ! -e "$out/manifest.json" ]] || fail "SIG$sig: a manifest was written"
    expect_status 0 "$TV_EXTRACT" --model "$model" "${module_flags[@]}" --images "$EXAMPLES" --out "$out" \
      --threads 2 --quiet
    "$TV_PYTHON" "$TV_REFERENCE" compare "$WORK/ref" "$out" --modules "$MODULES" --tolerance 1e-5 >/dev/null \
      || fail "SIG$sig: the run after the stop differs"
  done
fi
echo "ok"
