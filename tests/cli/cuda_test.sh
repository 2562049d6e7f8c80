#!/bin/bash
# cuda_test.sh — tv-extract on CUDA (issue #16). Usage: cuda_test.sh refused|extract
#   refused  without a GPU visible to tv-extract's LibTorch: --device cuda / cuda:0 is one error line
#            naming the device, the model and why (a CPU-only LibTorch, or no GPU), and nothing is
#            written. Skips (77) where a GPU is visible.
#   extract  with a GPU: --device cuda features equal --device cpu within 5e-3 x max |cpu| (cuDNN
#            runs convolutions in TF32 by default, in LibTorch as in PyTorch and THINGSvision), cuda:0
#            equals cuda, and cuda:N for N = the number of GPUs is an error naming that number.
#            Skips (77), saying why, where no GPU is visible.
source "$(dirname "$0")/common.sh"
mode=${1:?usage: cuda_test.sh refused|extract}

# What tv-extract's own LibTorch says about CUDA: a run on one image tells (no other probe is as true).
mkdir -p "$WORK/one"
cp "$(ls "$EXAMPLES"/*.jpg | head -n 1)" "$WORK/one/"
probe_rc=0
"$TV_EXTRACT" --model "$TV_MODEL" --module avgpool --images "$WORK/one" --out "$WORK/probe" --device cuda \
  --quiet >"$WORK/probe.out" 2>"$WORK/probe.err" || probe_rc=$?
if [[ $probe_rc == 0 ]]; then gpu=1; else gpu=0; fi

if [[ $mode == refused ]]; then
  if [[ $gpu == 1 ]]; then echo "a CUDA GPU is visible to tv-extract: the refusal cannot be tested here"; exit 77; fi
  for device in cuda cuda:0 cuda:3; do
    rm -rf "$WORK/o"
    expect_error 1 "on $device: " "$TV_EXTRACT" --model "$TV_MODEL" --module avgpool --images "$EXAMPLES" \
      --out "$WORK/o" --device "$device"
    grep -qF "$(basename "$TV_MODEL")" "$WORK/stderr" || fail "the error does not name the model: $(cat "$WORK/stderr")"
    grep -qE "built without CUDA|no CUDA GPU is visible" "$WORK/stderr" || fail "the error does not say why: $(cat "$WORK/stderr")"
    [[ ! -e "$WORK/o/manifest.json" && -z "$(find "$WORK/o" -name 'features*' 2>/dev/null)" ]] \
      || fail "a refused CUDA run wrote outputs: $(find "$WORK/o")"
  done
  echo "OK: CUDA refused with a clear message ($(cat "$WORK/stderr"))"
  exit 0
fi

[[ $mode == extract ]] || fail "unknown mode '$mode'"
if [[ $gpu == 0 ]]; then
  echo "SKIP: no CUDA GPU visible to tv-extract: $(tail -n 1 "$WORK/probe.err")"
  exit 77
fi
run() {  # run OUT DEVICE
  "$TV_EXTRACT" --model "$TV_MODEL" --module layer3,avgpool --images "$EXAMPLES" --out "$1" --device "$2" \
    --batch-size 3 --quiet || fail "tv-extract --device $2 failed"
}
run "$WORK/cpu" cpu
run "$WORK/cuda" cuda
run "$WORK/cuda0" cuda:0
"$TV_PYTHON" - "$WORK" <<'EOF' || fail "CUDA features differ from CPU features"
import sys
import numpy as np
work = sys.argv[1]
ok = True
for module in ("layer3", "avgpool"):
    cpu = np.load(f"{work}/cpu/{module}/features.npy")
    for device, tol in (("cuda", 5e-3), ("cuda0", 1e-6)):
        other = np.load(f"{work}/{device}/{module}/features.npy")
        base = cpu if device == "cuda" else np.load(f"{work}/cuda/{module}/features.npy")
        err = float(np.abs(other - base).max() / max(np.abs(base).max(), 1e-30)) if other.shape == base.shape else float("inf")
        print(f"{module} {device} vs {'cpu' if device == 'cuda' else 'cuda'}: max |diff| / max |ref| = {err:.2e} (tolerance {tol:g})")
        ok = ok and err <= tol
sys.exit(0 if ok else 1)
EOF
grep -q '"device": "cuda"' "$WORK/cuda/manifest.json" || fail "manifest.json does not record device cuda"
count=$("$TV_PYTHON" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || nvidia-smi -L | wc -l)
expect_error 1 "only $count CUDA GPU(s) visible" "$TV_EXTRACT" --model "$TV_MODEL" --module avgpool \
  --images "$EXAMPLES" --out "$WORK/beyond" --device "cuda:$count"
[[ ! -e "$WORK/beyond/manifest.json" ]] || fail "a refused device wrote a manifest"
echo "OK: --device cuda equals cpu, cuda:0 equals cuda, cuda:$count names the GPU count"
