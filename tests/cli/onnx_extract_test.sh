#!/usr/bin/env bash
# tv-extract on OpenCV DNN models (issue #8): one seeded-random resnet18 (BatchNorm randomised) exported
# by models/export.py as TorchScript and as ONNX, each with its JSON sidecar, gives the same features
# for a conv, two pooling layers and fc (<= 1e-4 relative to max |ref|, numpy); --list-modules and
# manifest.json on the .onnx; --layout and the sidecar's native_layout / input_layout (an NHWC-input
# export); a bad .onnx and a bad sidecar layout give one-line errors naming the file; --preset
# keras_caffe end to end equals a Python reference of THINGSvision's Keras preprocessing order.
source "$(dirname "$0")/common.sh"
M="$WORK/models"
expect_status 0 "$TV_PYTHON" "$TV_SOURCE_DIR/tests/cli/onnx_extract_models.py" "$M"

# export.py writes the same sidecar (preprocessing, suggested modules) beside the .onnx as beside the .pt.
"$TV_PYTHON" - "$M/pt/resnet18.json" "$M/onnx/resnet18.json" <<'PY' || fail "the .onnx sidecar differs from the .pt one"
import json, sys
pt, onnx = (json.load(open(f)) for f in sys.argv[1:])
differ = {"file", "format", "export_method", "sha256", "module_tree"}
onnx_only = {"onnx_opset", "input_names", "output_names", "onnx_identity_nodes_removed"}
assert set(onnx) - set(pt) == onnx_only, set(onnx) ^ set(pt)
for key in set(pt) - differ:
    assert pt[key] == onnx[key], (key, pt[key], onnx[key])
assert "preprocessing" in pt and "suggested_modules" in pt
assert onnx["file"] == "resnet18.onnx" and onnx["format"] == "onnx", onnx
PY

MODULES=(--module layer1.0.conv1 --module maxpool --module avgpool --module fc)
expect_status 0 "$TV_EXTRACT" --model "$M/pt/resnet18.pt" "${MODULES[@]}" --images "$EXAMPLES" --out "$WORK/pt" --threads 2 --quiet
mkdir "$WORK/ld"
LD_DEBUG=files LD_DEBUG_OUTPUT="$WORK/ld/log" \
  expect_status 0 "$TV_EXTRACT" --model "$M/onnx/resnet18.onnx" "${MODULES[@]}" --images "$EXAMPLES" --out "$WORK/onnx" --threads 2 --quiet
# an ONNX model runs without LibTorch (the TorchScript plugin is never loaded)
# (grep on the files, not cat | grep -q: with pipefail, cat's SIGPIPE would fail the check)
! grep -q 'file=.*libtorch_cpu\.so.*generating link map' "$WORK"/ld/log.* || fail "an ONNX run loaded LibTorch"
grep -q 'file=.*libopencv_dnn\.so.*generating link map' "$WORK"/ld/log.* || fail "LD_DEBUG logged no library loads"

# compare REF_DIR GOT_DIR PERMUTE MODULE...: features equal within 1e-4 relative to max |ref|;
# PERMUTE "nhwc": GOT is N x H x W x C of REF's N x C x H x W for 4-D outputs.
compare() {
  "$TV_PYTHON" - "$@" <<'PY' || fail "features differ: $*"
import sys
import numpy as np
ref_dir, got_dir, permute = sys.argv[1:4]
for module in sys.argv[4:]:
    ref = np.load(f"{ref_dir}/{module}/features.npy")
    got = np.load(f"{got_dir}/{module}/features.npy")
    if permute == "nhwc" and ref.ndim == 4:
        ref = ref.transpose(0, 2, 3, 1)
    assert ref.shape == got.shape, (module, ref.shape, got.shape)
    assert ref.shape[0] == 7, ref.shape
    diff = float(np.abs(ref - got).max()) / float(np.abs(ref).max())
    print(f"{module}: {ref.shape}, max |diff| / max |ref| = {diff:.3g}")
    assert diff <= 1e-4, (module, diff)
PY
}
compare "$WORK/pt" "$WORK/onnx" nchw layer1.0.conv1 maxpool avgpool fc

"$TV_PYTHON" - "$WORK/onnx/manifest.json" <<'PY' || fail "manifest.json of the .onnx run"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["status"] == "complete" and m["model_path"].endswith("resnet18.onnx"), m
assert [x["name"] for x in m["modules"]] == ["layer1.0.conv1", "maxpool", "avgpool", "fc"], m["modules"]
assert (m["layout"], m["input_layout"], m["native_layout"]) == ("native", "automatic", "automatic"), m
assert m["modules"][0]["activation_shape"] == [64, 56, 56] or m["modules"][0]["activation_shape"][-3:] == [64, 56, 56], m["modules"][0]
PY

expect_status 0 "$TV_EXTRACT" --model "$M/onnx/resnet18.onnx" --images "$EXAMPLES" --list-modules
grep -qP '^layer1\.0\.conv1\tConvolution\t\(64, 56, 56\)$' "$WORK/stdout" || { cat "$WORK/stdout" >&2; fail "--list-modules on the .onnx"; }
# OpenCV < 4.9 reads ONNX Gemm as an InnerProduct layer, 4.9+ as a Gemm layer.
grep -qP '\t(InnerProduct|Gemm)\t\(1000\)$' "$WORK/stdout" || { cat "$WORK/stdout" >&2; fail "--list-modules lists no fc (InnerProduct/Gemm)"; }

# ONNX from PyTorch is NCHW: --layout nchw changes nothing.
expect_status 0 "$TV_EXTRACT" --model "$M/onnx/resnet18.onnx" "${MODULES[@]}" --images "$EXAMPLES" --out "$WORK/onnx_nchw" --layout nchw --threads 2 --quiet
same_files "$WORK/onnx" "$WORK/onnx_nchw"

# Sidecar "native_layout": "nhwc" (as for a Keras model): --layout native returns 4-D outputs as
# N x H x W x C (the conv and pooling layers permuted), --layout nchw as PyTorch.
mkdir -p "$M/native_nhwc"
cp "$M/onnx/resnet18.onnx" "$M/native_nhwc/"
"$TV_PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); d["native_layout"]="nhwc"; json.dump(d, open(sys.argv[2], "w"))' \
  "$M/onnx/resnet18.json" "$M/native_nhwc/resnet18.json"
expect_status 0 "$TV_EXTRACT" --model "$M/native_nhwc/resnet18.onnx" "${MODULES[@]}" --images "$EXAMPLES" --out "$WORK/native_nhwc" --threads 2 --quiet
compare "$WORK/pt" "$WORK/native_nhwc" nhwc layer1.0.conv1 maxpool avgpool fc
grep -q '"native_layout": "nhwc"' "$WORK/native_nhwc/manifest.json" || fail "manifest.json lacks native_layout nhwc"
expect_status 0 "$TV_EXTRACT" --model "$M/native_nhwc/resnet18.onnx" "${MODULES[@]}" --images "$EXAMPLES" --out "$WORK/native_nhwc_nchw" --layout nchw --threads 2 --quiet
compare "$WORK/pt" "$WORK/native_nhwc_nchw" nchw layer1.0.conv1 maxpool avgpool fc
grep -q '"layout": "nchw"' "$WORK/native_nhwc_nchw/manifest.json" || fail "manifest.json lacks layout nchw"
# --pool on an NHWC-native model pools each channel as on the .pt (and as numpy on the .pt's maps).
expect_status 0 "$TV_EXTRACT" --model "$M/native_nhwc/resnet18.onnx" --module layer1.0.conv1 --module maxpool --pool avg --images "$EXAMPLES" --out "$WORK/native_nhwc_pool" --threads 2 --quiet
expect_status 0 "$TV_EXTRACT" --model "$M/pt/resnet18.pt" --module layer1.0.conv1 --module maxpool --pool max --images "$EXAMPLES" --out "$WORK/pt_pool_max" --threads 2 --quiet
expect_status 0 "$TV_EXTRACT" --model "$M/native_nhwc/resnet18.onnx" --module layer1.0.conv1 --module maxpool --pool max --images "$EXAMPLES" --out "$WORK/native_nhwc_pool_max" --threads 2 --quiet
"$TV_PYTHON" - "$WORK" <<'PY' || fail "--pool on an NHWC-native model differs from numpy pooling of the .pt maps"
import sys
import numpy as np
work = sys.argv[1]
for module in ("layer1.0.conv1", "maxpool"):
    maps = np.load(f"{work}/pt/{module}/features.npy").astype(np.float64)
    for pool, ref in (("", maps.mean(axis=(2, 3))), ("_max", maps.max(axis=(2, 3)))):
        for got_dir in ([f"native_nhwc_pool{pool}"] + ([f"pt_pool_max"] if pool else [])):
            got = np.load(f"{work}/{got_dir}/{module}/features.npy")
            assert got.shape == ref.shape, (got_dir, module, got.shape, ref.shape)
            diff = float(np.abs(got - ref).max()) / float(np.abs(ref).max())
            print(f"{got_dir} {module}: max |diff| / max |ref| = {diff:.3g}")
            assert diff <= 1e-4, (got_dir, module, diff)
PY
# --resume refuses another --layout.
expect_error 2 "--layout (native vs nchw)" "$TV_EXTRACT" --model "$M/native_nhwc/resnet18.onnx" "${MODULES[@]}" \
  --images "$EXAMPLES" --out "$WORK/native_nhwc" --layout nchw --resume --quiet

# An NHWC-input export (the wrapper permutes to NCHW first; its modules are model.*) with sidecar
# "input_layout": "nhwc" gives the same features.
expect_status 0 "$TV_EXTRACT" --model "$M/nhwc/resnet18.onnx" --module model.layer1.0.conv1 --module model.maxpool \
  --module model.avgpool --module model.fc --images "$EXAMPLES" --out "$WORK/nhwc" --threads 2 --quiet
for m in layer1.0.conv1 maxpool avgpool fc; do mv "$WORK/nhwc/model.$m" "$WORK/nhwc/$m"; done
compare "$WORK/pt" "$WORK/nhwc" nchw layer1.0.conv1 maxpool avgpool fc
grep -q '"input_layout": "nhwc"' "$WORK/nhwc/manifest.json" || fail "manifest.json lacks input_layout nhwc"

# Errors: a bad .onnx, a bad sidecar layout, a bad --layout.
expect_error 1 "$M/bad.onnx" "$TV_EXTRACT" --model "$M/bad.onnx" --module fc --images "$EXAMPLES" --out "$WORK/bad"
grep -qF "cannot read model" "$WORK/stderr" || fail "bad .onnx: $(cat "$WORK/stderr")"
# A valid ONNX file (opset 17, then 13) with a node OpenCV cannot read: the node, its op and the
# opset named, and another opset advised (13 for 17, 17 for 13).
for opset in 17 13; do
"$TV_PYTHON" - "$WORK/unknown_op.onnx" "$opset" <<'PY'
import sys
from onnx import TensorProto, helper
x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])
y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])
nodes = [helper.make_node("Relu", ["input"], ["r"], name="relu"),
         helper.make_node("NoSuchOp", ["r"], ["output"], name="the_odd_node")]
model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", int(sys.argv[2]))])
open(sys.argv[1], "wb").write(model.SerializeToString())
PY
expect_error 1 "node 'the_odd_node' (op NoSuchOp) cannot be read" \
  "$TV_EXTRACT" --model "$WORK/unknown_op.onnx" --module relu --images "$EXAMPLES" --out "$WORK/bad_op"
grep -qF "(ONNX opset $opset)" "$WORK/stderr" || fail "opset not named: $(cat "$WORK/stderr")"
grep -qF "opset_version=$((opset == 17 ? 13 : 17)))" "$WORK/stderr" || fail "no advice: $(cat "$WORK/stderr")"
done
"$TV_PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); d["input_layout"]="nwhc"; json.dump(d, open(sys.argv[1], "w"))' \
  "$M/native_nhwc/resnet18.json"
expect_error 1 "model sidecar '$M/native_nhwc/resnet18.json': key 'input_layout' must be \"nchw\" or \"nhwc\", got \"nwhc\"" \
  "$TV_EXTRACT" --model "$M/native_nhwc/resnet18.onnx" --module fc --images "$EXAMPLES" --out "$WORK/bad2"
expect_status 2 "$TV_EXTRACT" --model "$M/onnx/resnet18.onnx" --module fc --images "$EXAMPLES" --out "$WORK/bad3" --layout nhwc
grep -qF -- "--layout" "$WORK/stderr" || fail "bad --layout: $(cat "$WORK/stderr")"

# A Keras preset on the .onnx: recorded in manifest.json.
expect_status 0 "$TV_EXTRACT" --model "$M/onnx/resnet18.onnx" --module fc --images "$EXAMPLES" --out "$WORK/keras" --preset keras_caffe --threads 2 --quiet
grep -q '"interpolation": "tf_bilinear"' "$WORK/keras/manifest.json" || fail "manifest.json lacks tf_bilinear"
grep -qF 'to tensor /1, BGR order' "$WORK/keras/manifest.json" || fail "manifest.json lacks the Keras preprocessing"
# ... and its features equal THINGSvision's Keras order computed in Python: PIL RGB, preprocess_input
# (caffe) in float32, then TF's bilinear resize to 224 x 224 (tests/reference/keras_preprocess_reference.py),
# then the same network as TorchScript in torch.
"$TV_PYTHON" - "$TV_SOURCE_DIR" "$EXAMPLES" "$M/pt/resnet18.pt" "$WORK/keras" <<'PY' || fail "keras_caffe features differ from Python"
import os, sys
import numpy as np
import torch
from PIL import Image
source, images, model_file, out = sys.argv[1:]
sys.path.insert(0, os.path.join(source, "tests", "reference"))
from keras_preprocess_reference import preprocess_input, tf_resize_bilinear
names = open(os.path.join(out, "file_names.txt")).read().split()
batch = np.stack([tf_resize_bilinear(preprocess_input(np.asarray(Image.open(os.path.join(images, n)).convert("RGB"),
                                                                   dtype=np.float32), "caffe"), 224) for n in names])
with torch.no_grad():
    ref = torch.jit.load(model_file).eval()(torch.from_numpy(batch)).numpy()
got = np.load(os.path.join(out, "fc", "features.npy"))
diff = float(np.abs(ref - got).max()) / float(np.abs(ref).max())
print(f"keras_caffe fc: {got.shape}, max |diff| / max |ref| = {diff:.3g}")
assert ref.shape == got.shape == (7, 1000) and diff <= 1e-4, (ref.shape, got.shape, diff)
PY
echo "ok"
