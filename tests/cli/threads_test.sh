#!/bin/bash
# Thread settings: with OMP_WAIT_POLICY unset and more than one LibTorch thread, the tv-extract
# launcher sets OMP_WAIT_POLICY=PASSIVE before the program holding LibTorch starts (LibTorch is
# loaded once: counted with the dynamic loader's LD_DEBUG) and OpenBLAS gets as many threads as LibTorch; a policy
# or OPENBLAS_NUM_THREADS set by the user is kept; manifest.json records what was used. The features
# do not depend on it. LibTorch is a plugin loaded on a thread: timed in manifest.json; a missing or
# broken plugin is a one-line error. Where LibTorch carries its own BLAS (PyPI's wheel: libtorch_cpu.so
# exports sgemm_), its BLAS calls bind to it, not to the system's OpenBLAS that OpenCV loads first
# (the launcher preloads it; checked in the loader's LD_DEBUG=bindings), and the program started
# without the launcher warns once.
source "$(dirname "$0")/common.sh"
run() {  # run VAR=VALUE|- TV_EXTRACT_ARGS...: tv-extract with only that variable of the two set
  local setting=$1; shift
  [[ $setting == - ]] && setting=TV_NOTHING=1
  env -u OMP_WAIT_POLICY -u OPENBLAS_NUM_THREADS "$setting" "$TV_EXTRACT" --model "$TV_MODEL" --module layer4.0 \
    --module fc --images "$EXAMPLES" --batch-size 3 --quiet "$@"
}
check() {  # check OUT POLICY BLAS_THREADS THREADS
  "$TV_PYTHON" - "$@" <<'PY'
import json, sys
out, policy, blas, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
m = json.load(open(f"{out}/manifest.json"))
got = (m["openmp_wait_policy"], m["blas_threads"], m["threads"], m["status"])
assert got == (policy, blas, threads, "complete"), (out, got)
PY
}
# the launcher keeps every argument as it was (a space in the output path); LibTorch is loaded once
mkdir "$WORK/ld"
LD_DEBUG=files LD_DEBUG_OUTPUT="$WORK/ld/log" expect_status 0 run - --out "$WORK/passive run" --threads 2
check "$WORK/passive run" PASSIVE 2 2
loads=$(cat "$WORK"/ld/log.* | grep -cE 'file=([^ ]*/)?libtorch_cpu\.so.*generating link map' || true)
[[ $loads == 1 ]] || fail "libtorch_cpu.so was loaded $loads times in one run (expected once)"
# LibTorch is the TorchScript plugin, loaded on a thread from the job's start: manifest.json times that
# start and the part of the model load that waited for it.
"$TV_PYTHON" - "$WORK/passive run/manifest.json" <<'PY' || fail "manifest.json's LibTorch start timing"
import json, sys
t = json.load(open(sys.argv[1]))["timing"]
assert t["runtime_start_seconds"] > 0, t
assert 0 <= t["runtime_wait_seconds"] <= t["load_seconds"], t
assert t["runtime_wait_seconds"] <= t["runtime_start_seconds"] + 0.05, t
PY
# A missing or broken plugin: one line naming it, nothing written.
expect_error 1 "the TorchScript plugin libthingsvision_torch.so is missing (looked for '$WORK/none.so' (not found))" \
  env THINGSVISION_TORCH_PLUGIN="$WORK/none.so" "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$EXAMPLES" \
  --out "$WORK/no_plugin" --quiet
echo "not a shared object" > "$WORK/broken.so"
expect_error 1 "cannot load LibTorch through '$WORK/broken.so': " \
  env THINGSVISION_TORCH_PLUGIN="$WORK/broken.so" "$TV_EXTRACT" --model "$TV_MODEL" --module fc --images "$EXAMPLES" \
  --out "$WORK/broken_plugin" --quiet
[[ ! -e $WORK/no_plugin && ! -e $WORK/broken_plugin ]] || fail "a run without its plugin left an output folder"
# LibTorch's BLAS calls (sgemm_: resnet18's fc) as the dynamic loader binds them.
mkdir "$WORK/bindings"
LD_DEBUG=bindings LD_DEBUG_OUTPUT="$WORK/bindings/log" expect_status 0 run - --out "$WORK/bindings/run" --threads 2
blas_warning="thingsvision: warning: LibTorch's matrix products (sgemm_) run in "
! grep -qF "$blas_warning" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "tv-extract warned about LibTorch's BLAS"; }
sgemm_binding=$(grep -h "binding file [^ ]*/libtorch_cpu\.so[^ ]* \[0\] to .*symbol \`sgemm_'" "$WORK"/bindings/log.* | head -1 || true)
torch_cpu=$(grep -ho "binding file [^ ]*/libtorch_cpu\.so[^ ]* \[0\]" "$WORK"/bindings/log.* | head -1 | cut -d' ' -f3 || true)
[[ -n $torch_cpu ]] || fail "the loader's log names no libtorch_cpu.so"
if nm -D --defined-only "$torch_cpu" | grep -q ' T sgemm_$'; then
  [[ -n $sgemm_binding ]] || fail "no call of sgemm_ from $torch_cpu was bound"
  target=$(sed -E 's/.* to ([^ ]*) \[0\]: .*/\1/' <<<"$sgemm_binding")
  [[ $(realpath "$target") == $(realpath "$torch_cpu") ]] ||
    fail "LibTorch's sgemm_ calls bind to $target, not to its own BLAS in $torch_cpu"
  # Without the launcher (a program linking the library), the same binding is a warning, once.
  expect_status 0 env OMP_WAIT_POLICY=passive "$TV_EXTRACT_MAIN" --model "$TV_MODEL" --module fc \
    --images "$EXAMPLES" --out "$WORK/no_launcher" --quiet
  [[ $(grep -cF "$blas_warning" "$WORK/stderr") == 1 ]] || { cat "$WORK/stderr" >&2; fail "no BLAS warning without the launcher"; }
  grep -qF "Start the program with LD_PRELOAD=$torch_cpu" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "the BLAS warning's advice"; }
  # A LibTorch in LD_LIBRARY_PATH (a bundle on another machine) is the one preloaded, as the loader
  # would take it.
  mkdir "$WORK/moved"
  ln -s "$(dirname "$torch_cpu")" "$WORK/torch_lib"
  LD_LIBRARY_PATH="$WORK/torch_lib" LD_DEBUG=files LD_DEBUG_OUTPUT="$WORK/moved/log" \
    expect_status 0 run - --out "$WORK/moved/run" --threads 2
  ! grep -qF "$blas_warning" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "BLAS warning with LD_LIBRARY_PATH"; }
  grep -q "file=$WORK/torch_lib/libtorch_cpu\.so .*generating link map" "$WORK"/moved/log.* ||
    fail "the launcher did not preload the libtorch_cpu.so of LD_LIBRARY_PATH"
else
  echo "cli_threads: $torch_cpu carries no BLAS of its own (sgemm_ from: ${sgemm_binding:-not called})"
fi
expect_status 0 run OMP_WAIT_POLICY=active --out "$WORK/active" --threads 2
check "$WORK/active" active 1 2
expect_status 0 run OPENBLAS_NUM_THREADS=1 --out "$WORK/blas_set" --threads 2
check "$WORK/blas_set" PASSIVE 0 2
expect_status 0 run OMP_WAIT_POLICY=passive --out "$WORK/user_passive" --threads 2
check "$WORK/user_passive" passive 2 2
expect_status 0 run - --out "$WORK/one" --threads 1
check "$WORK/one" "" 1 1
"$TV_PYTHON" - "$WORK" <<'PY'
import sys, numpy as np
w = sys.argv[1]
for module in ["layer4.0", "fc"]:
    ref = np.load(f"{w}/one/{module}/features.npy")
    for run in ["passive run", "bindings/run", "active", "blas_set", "user_passive"]:
        a = np.load(f"{w}/{run}/{module}/features.npy")
        assert a.shape == ref.shape and np.abs(a - ref).max() <= 1e-5 * np.abs(ref).max(), (run, module)
PY
echo "cli_threads: ok"
