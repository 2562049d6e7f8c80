#!/bin/bash
# Bad-input corpus: by default tv-extract checks the image headers first and stops with one line
# naming every bad one found so (else the first bad image decoded) and --skip-bad, leaving no features
# file; with --skip-bad it leaves them out of every output and lists them.
source "$(dirname "$0")/common.sh"
CORPUS="$WORK/corpus"
"$TV_PYTHON" "$TV_REFERENCE" badcorpus "$CORPUS" --good "$EXAMPLES/apple.jpg,$EXAMPLES/baboon.jpg,$EXAMPLES/orange.jpg"
BAD=(b_zero.jpg c_truncated.jpg d_text.png e_bomb.png f_corrupt.png)
if [[ $(id -u) != 0 ]]; then  # root reads any file: the unreadable case needs an ordinary user
  cp "$EXAMPLES/fruits.jpg" "$CORPUS/h_unreadable.jpg" && chmod 000 "$CORPUS/h_unreadable.jpg"
  BAD+=(h_unreadable.jpg)
fi

# Each bad file alone beside a good one: exit 1, one line naming it, no features file, no crash.
for bad in "${BAD[@]}" g_broken_link.jpg; do
  one="$WORK/one_$bad"; mkdir -p "$one"
  cp "$EXAMPLES/apple.jpg" "$one/"
  cp -P "$CORPUS/$bad" "$one/" 2>/dev/null || cp -a "$CORPUS/$bad" "$one/"
  rc=0; "$TV_EXTRACT" --model "$TV_MODEL" --module avgpool --images "$one" --out "$WORK/out_$bad" \
    --batch-size 2 >"$WORK/stdout" 2>"$WORK/stderr" || rc=$?
  if [[ $bad == g_broken_link.jpg && $rc == 0 ]]; then
    # THINGSvision lists regular files only (DirEntry.is_file() is false for a broken link)
    [[ $(wc -l <"$WORK/out_$bad/file_names.txt") == 1 ]] || fail "broken link was listed"
    continue
  fi
  [[ $rc == 1 ]] || { cat "$WORK/stderr" >&2; fail "$bad: exit $rc, expected 1"; }
  grep -qF "$bad" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "$bad: message does not name the file"; }
  [[ $(wc -l <"$WORK/stderr") == 1 ]] || { cat "$WORK/stderr" >&2; fail "$bad: not one line"; }
  grep -qF -- "--skip-bad" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "$bad: message does not name --skip-bad"; }
  [[ -z $(find "$WORK/out_$bad" -name 'features*' ! -name '*.journal*' 2>/dev/null) ]] || fail "$bad: a features file was left"
  # the same command with --skip-bad just starts: the strict run wrote nothing to continue
  expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module avgpool --images "$one" --out "$WORK/out_$bad" \
    --batch-size 2 --skip-bad
  [[ $(wc -l <"$WORK/out_$bad/file_names.txt") == 1 ]] || fail "$bad: --skip-bad after a strict run"
done

# The whole corpus, default mode: the header checks name every image they find bad (empty, not an
# image, a decompression bomb) and --skip-bad, before anything is written.
expect_error 1 "pass --skip-bad to leave them out" \
  "$TV_EXTRACT" --model "$TV_MODEL" --module avgpool --images "$CORPUS" --out "$WORK/strict"
for bad in b_zero.jpg d_text.png e_bomb.png; do
  grep -qF "$bad" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "strict corpus run does not name $bad"; }
done
[[ ! -e "$WORK/strict/manifest.json" ]] || fail "the header checks left a manifest"
# ... and the same command with --skip-bad just starts
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module avgpool --images "$CORPUS" --out "$WORK/strict" --skip-bad

# --skip-bad: rows for the good images only, bad ones in the manifest and on stderr.
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module avgpool --module fc --images "$CORPUS" \
  --out "$WORK/skip" --skip-bad --batch-size 2
for bad in "${BAD[@]}"; do grep -qF "skipped '$bad'" "$WORK/stderr" || fail "stderr does not list $bad"; done
printf 'apple.jpg\nbaboon.jpg\norange.jpg\n' | cmp - "$WORK/skip/file_names.txt" || fail "file_names.txt with --skip-bad"
"$TV_PYTHON" - "$WORK/skip" "${BAD[@]}" <<'PY'
import json, sys
import numpy as np
out, bad = sys.argv[1], sys.argv[2:]
m = json.load(open(out + "/manifest.json"))
skipped = [s["path"] for s in m["skipped"]]
assert all(b in skipped for b in bad), (bad, skipped)
assert all(s["reason"] for s in m["skipped"])
for module in ("avgpool", "fc"):
    assert np.load("%s/%s/features.npy" % (out, module)).shape[0] == 3
assert m["num_images"] == 3
PY
# the good rows equal a run on the good images alone
mkdir -p "$WORK/good" && cp "$EXAMPLES/apple.jpg" "$EXAMPLES/baboon.jpg" "$EXAMPLES/orange.jpg" "$WORK/good/"
expect_status 0 "$TV_EXTRACT" --model "$TV_MODEL" --module avgpool --module fc --images "$WORK/good" --out "$WORK/good_out" --batch-size 1
"$TV_PYTHON" -c "
import numpy as np, sys
for m in ('avgpool', 'fc'):
    a = np.load('$WORK/skip/%s/features.npy' % m); b = np.load('$WORK/good_out/%s/features.npy' % m)
    assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max(), m
"
echo "bad_input: ok"
