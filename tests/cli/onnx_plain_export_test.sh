#!/usr/bin/env bash
# Plain torch.onnx.export files (issue #17): resnet18, mobilenet_v3_small and mobilenet_v2 exported with default
# settings by this platform's torch (tests/cli/onnx_plain_export_models.py; BatchNorm folded, Identity
# nodes left in) load in tv-extract — the Identity nodes removed in memory, the file unchanged — and
# give the features of PyTorch forward hooks on the same weights for module paths that survive BN
# folding (blocks, pooling, classifier; <= 1e-4 relative to max |ref| per image). mobilenet_v3_small's squeeze-excitation
# blocks also check batches OpenCV 4.6 can only run image by image, mobilenet_v2's ReLU6 the Clip
# rewrite (bounds as inputs → attributes). With --backend onnxruntime (builds
# with ONNX Runtime, Debian 13) the same, and a plain vit_b_32 export too; else a one-line error.
source "$(dirname "$0")/common.sh"
M="$WORK/models"
expect_status 0 "$TV_PYTHON" "$TV_SOURCE_DIR/tests/cli/onnx_plain_export_models.py" "$M"
# The files really are plain exports with Identity nodes (torch 1.13 makes 16 and 37 of them).
grep -qP '^resnet18 [1-9]' "$WORK/stdout" || fail "resnet18.onnx has no Identity nodes: $(cat "$WORK/stdout")"
sha256sum "$M"/*.onnx >"$WORK/onnx.sha256"

# extract BACKEND ARCH MODULE...: tv-extract --backend BACKEND on ARCH.onnx, against PyTorch forward hooks of
# the eager torchvision model with the same weights on PIL/torchvision-preprocessed images
# (extraction_reference.py features; per image max |got - ref| / max |ref| <= 1e-4, Pearson r >= 0.99999).
extract() {
  local backend=$1 arch=$2; shift 2
  local modules=() m list
  for m in "$@"; do modules+=(--module "$m"); done
  list=$(IFS=,; echo "$*")
  expect_status 0 "$TV_EXTRACT" --model "$M/$arch.onnx" --backend "$backend" "${modules[@]}" --images "$EXAMPLES" --out "$WORK/$arch.$backend.out" --threads 2 --quiet
  "$TV_PYTHON" -W ignore "$TV_REFERENCE" features --model "$M/$arch.pt" --arch "$arch" --images "$EXAMPLES" \
    --modules "$list" --out "$WORK/$arch.$backend.ref" >/dev/null
  "$TV_PYTHON" "$TV_REFERENCE" compare "$WORK/$arch.$backend.ref" "$WORK/$arch.$backend.out" --modules "$list" \
    --tolerance 1e-4 || fail "$arch: ONNX features ($backend) differ from PyTorch's forward hooks"
}
extract automatic resnet18 layer1.0 layer2 layer4.1.relu avgpool fc
extract automatic mobilenet_v3_small features.1 features.4.block.2 features.12 avgpool classifier.3
extract automatic mobilenet_v2 features.1 features.17 features.18 classifier.1

# --backend onnxruntime: the same features where the build has ONNX Runtime (required on Debian 13,
# which packages it), else one line saying the build has none.
rc=0
"$TV_EXTRACT" --model "$M/resnet18.onnx" --backend onnxruntime --module fc --images "$EXAMPLES" --out "$WORK/ort_probe" --quiet >"$WORK/stdout" 2>"$WORK/stderr" || rc=$?
if grep -qF "this build of thingsvision has no ONNX Runtime backend" "$WORK/stderr"; then
  [[ $rc == 1 && $(wc -l <"$WORK/stderr") == 1 ]] || { cat "$WORK/stderr" >&2; fail "--backend onnxruntime without ONNX Runtime: exit $rc"; }
  grep -q '^VERSION_CODENAME=trixie' /etc/os-release && fail "Debian 13 build without ONNX Runtime (libonnxruntime-dev)"
  echo "no ONNX Runtime in this build: --backend onnxruntime says so"
else
  [[ $rc == 0 ]] || { cat "$WORK/stderr" >&2; fail "--backend onnxruntime: exit $rc"; }
  # Quiet means quiet: no "Schema error" lines from Debian's libonnx.
  [[ ! -s "$WORK/stderr" ]] || { head -3 "$WORK/stderr" >&2; fail "--backend onnxruntime --quiet wrote to stderr"; }
  extract onnxruntime resnet18 layer1.0 layer2 layer4.1.relu avgpool fc
  extract onnxruntime mobilenet_v3_small features.1 features.4.block.2 features.12 avgpool classifier.3
  # A transformer OpenCV 4.6 cannot read (its class token's dynamic Expand): a plain ViT export.
  expect_status 0 "$TV_PYTHON" "$TV_SOURCE_DIR/tests/cli/onnx_plain_export_models.py" "$M" vit_b_32
  # (not heads: torchvision initialises ViT's head to zeros)
  extract onnxruntime vit_b_32 conv_proj encoder.layers.encoder_layer_0 encoder.layers.encoder_layer_11.mlp encoder.ln
fi

# Module paths from the exporter's scopes, as for models/export.py's files; BN folded away.
expect_status 0 "$TV_EXTRACT" --model "$M/resnet18.onnx" --images "$EXAMPLES" --list-modules
grep -qP '^layer1\.0\.conv1\tConvolution\t\(64, 56, 56\)$' "$WORK/stdout" || { cat "$WORK/stdout" >&2; fail "--list-modules on the plain export"; }
grep -qP '^layer1\.0\.bn1\t' "$WORK/stdout" && fail "bn1 listed though folded into conv1"
# --text on an image graph: one line naming the file and the missing text method; nothing written.
printf 'a photo of a cat\n' >"$WORK/prompts.txt"
expect_error 1 "has no text method 'encode_text'" "$TV_EXTRACT" --model "$M/resnet18.onnx" --text "$WORK/prompts.txt" --out "$WORK/text_out"
grep -qF "$M/resnet18.onnx" "$WORK/stderr" || fail "the --text error does not name the file"
[[ ! -e "$WORK/text_out" ]] || fail "a refused --text run wrote $WORK/text_out"
# The files on disk are unchanged.
sha256sum -c --quiet "$WORK/onnx.sha256" || fail "tv-extract changed an .onnx file"
echo "ok"
