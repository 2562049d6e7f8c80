#!/bin/bash
# An archive saved by torch >= 2.0 (tests/data/torch2/sdpa_patch_model.pt, calls
# aten::scaled_dot_product_attention; made by tests/reference/make_torch2_archive.py). On a LibTorch
# older than 2.0 tv-extract must say what is wrong and what to do (the op, this LibTorch's version,
# build against a newer LibTorch), never "not a TorchScript archive"; on LibTorch >= 2.0 the archive
# extracts. A file that is no archive still gets "not a TorchScript archive".
source "$(dirname "$0")/common.sh"
ARCHIVE="$TV_SOURCE_DIR/tests/data/torch2/sdpa_patch_model.pt"
major=$("$TV_EXTRACT" --version | sed -n 's/.*LibTorch \([0-9]*\)\..*/\1/p')
[[ -n $major ]] || fail "tv-extract --version names no LibTorch version: $("$TV_EXTRACT" --version)"
cp "$ARCHIVE" "$WORK/model.pt"
if ((major < 2)); then
  expect_error 1 "calls aten::scaled_dot_product_attention, which LibTorch $major." \
    "$TV_EXTRACT" --model "$WORK/model.pt" --module head --images "$EXAMPLES" --out "$WORK/out"
  for text in "a TorchScript archive, but" "does not record which torch saved it" \
              "build thingsvision-cpp against a newer LibTorch" "README, 'Platforms'"; do
    grep -qF "$text" "$WORK/stderr" || fail "message lacks '$text': $(cat "$WORK/stderr")"
  done
  grep -q "not a TorchScript archive" "$WORK/stderr" && fail "a valid archive called 'not a TorchScript archive'"
  [[ ! -e "$WORK/out/manifest.json" ]] || fail "a manifest was written"
  # A sidecar that records the saver's torch version: the message names it.
  printf '{"schema_version": 1, "torch_version": "2.6.0", "preprocessing": {"preset": "thingsvision"}}\n' \
    >"$WORK/model.json"
  expect_error 1 "its sidecar says torch 2.6.0 saved it" \
    "$TV_EXTRACT" --model "$WORK/model.pt" --module head --images "$EXAMPLES" --out "$WORK/out"
else
  expect_status 0 "$TV_EXTRACT" --model "$WORK/model.pt" --module norm --module head --images "$EXAMPLES" \
    --out "$WORK/out" --quiet
  "$TV_PYTHON" - "$WORK/out" <<'PY'
import numpy as np, sys
head = np.load(sys.argv[1] + "/head/features.npy")
norm = np.load(sys.argv[1] + "/norm/features.npy")
assert head.shape == (7, 4) and norm.shape == (7, 196, 8), (head.shape, norm.shape)
assert np.isfinite(head).all() and np.abs(head).max() > 0
PY
fi
head -c 3000 "$ARCHIVE" | tail -c 1000 >"$WORK/broken.pt"
expect_error 1 "not a TorchScript archive written by torch.jit.save" \
  "$TV_EXTRACT" --model "$WORK/broken.pt" --module head --images "$EXAMPLES" --out "$WORK/out2"
echo ok
