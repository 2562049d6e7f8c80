#!/usr/bin/python3
"""Exports one seeded torchvision resnet18 as TorchScript and as ONNX for tests/model/onnx_backend_test.cpp,
with reference activations from Python forward hooks.

Usage: /usr/bin/python3 export_onnx_models.py OUTPUT_DIR

Writes OUTPUT_DIR/resnet18.pt (scripted), resnet18.onnx (models/export.py's ONNX_OPSET, BatchNorm
kept as nodes, Identity nodes removed by models/export.py's remove_identity_nodes), bad.onnx (not a
protobuf), input.bin (raw float32, NCHW), ref_<module>.bin (the last call's output as the forward
hook sees it) and index.json (shapes, the ONNX node names). BatchNorm weights, biases and running
statistics are randomised (seeded): with their default values torch 1.13 deduplicates the
initializers, and BN would be an identity. Also layouts.pt / layouts.onnx (export_layouts_model):
token outputs whose images are not in dimension 0.
"""
import io
import json
import os
import sys

import onnx
import torch
import torchvision

# The opset and the Identity-node clean-up are models/export.py's own: the fixture's ONNX file is
# prepared as that exporter prepares its files.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
from export import ONNX_OPSET, onnx_export, remove_identity_nodes  # noqa: E402

OUT = sys.argv[1] if len(sys.argv) > 1 else "onnx_data"
MODULES = ["conv1", "bn1", "relu", "maxpool", "layer1.0.conv1", "layer1.0.relu", "layer1.0",
           "layer2", "avgpool", "fc"]


def to_onnx(model: torch.nn.Module, x: torch.Tensor, **options) -> onnx.ModelProto:
    """`model` exported at ONNX_OPSET with a dynamic batch ("input" → "output"), as a proto."""
    buffer = io.BytesIO()
    with torch.no_grad():
        onnx_export(model, x, buffer, input_names=["input"], output_names=["output"],
                    opset_version=ONNX_OPSET,
                    dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, **options)
    return onnx.load_from_string(buffer.getvalue())


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    x = torch.rand(2, 3, 64, 64)

    torch.jit.script(model).save(os.path.join(OUT, "resnet18.pt"))

    proto = to_onnx(model, x[:1], do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE)
    removed = remove_identity_nodes(proto.graph)
    onnx.checker.check_model(proto)
    onnx.save(proto, os.path.join(OUT, "resnet18.onnx"))
    # The same model with its weights in a file beside it, as torch.onnx.export writes a model over
    # 2 GB (external data: the .onnx holds only the graph and the file's offsets).
    os.makedirs(os.path.join(OUT, "external"), exist_ok=True)
    external = onnx.ModelProto()
    external.CopyFrom(proto)
    onnx.save(external, os.path.join(OUT, "external", "resnet18.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="resnet18.onnx.data", size_threshold=0)
    with open(os.path.join(OUT, "bad.onnx"), "wb") as f:
        f.write(b"this is not an ONNX protobuf\n" * 4)

    # Reference: what forward hooks see (the last call of a module called several times).
    seen = {}
    named = dict(model.named_modules())
    for name in MODULES:
        named[name].register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach().clone()))
    with torch.no_grad():
        output = model(x)
    x.numpy().tofile(os.path.join(OUT, "input.bin"))
    refs = {}
    for name in MODULES:
        seen[name].numpy().tofile(os.path.join(OUT, f"ref_{name}.bin"))
        refs[name] = list(seen[name].shape)
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump({"input_shape": list(x.shape), "modules": refs,
                   "output_shape": list(output.shape),
                   "onnx_nodes": [n.name for n in proto.graph.node],
                   "identity_nodes_removed": removed}, f, indent=1)
    export_layouts_model()


class LayoutsModel(torch.nn.Module):
    """Token outputs whose images are not in dimension 0: `seq_proj` returns (L, N, D) (sequence
    first, as OpenAI CLIP's resblocks), `inner_proj` (N·L, D) (the images' rows merged image by
    image, as TNT's inner blocks), `mixed_proj` (L·N, D) (merged token by token: no layout fits)."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = torch.nn.Conv2d(3, 8, kernel_size=8, stride=8)
        self.seq_proj = torch.nn.Linear(8, 6)
        self.inner_proj = torch.nn.Linear(6, 5)
        self.mixed_proj = torch.nn.Linear(6, 5)
        self.fc = torch.nn.Linear(5, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).permute(2, 0, 1)  # (L, N, 8)
        seq = self.seq_proj(tokens)                          # (L, N, 6)
        n = x.shape[0]
        merged = seq.permute(1, 0, 2).reshape(-1, 6)         # (N·L, 6), image by image
        inner = self.inner_proj(merged)                      # (N·L, 5)
        mixed = self.mixed_proj(seq.reshape(-1, 6))          # (L·N, 5), token by token
        pooled = inner.reshape(n, -1, 5).mean(1) + mixed.reshape(-1, n, 5).mean(0)
        return self.fc(pooled)                               # (N, 4)


def export_layouts_model() -> None:
    """layouts.onnx / layouts.pt with layouts_input.bin (3 images) and layouts_ref_<module>.bin: the
    forward hooks' outputs with the images moved to dimension 0 (seq_proj: permute(1, 0, 2);
    inner_proj: reshape(N, L, D)), the layout tv-extract writes; mixed_proj: each image's rows (what
    a backend that runs images alone gives)."""
    torch.manual_seed(1)
    model = LayoutsModel().eval()
    x = torch.rand(3, 3, 32, 32)
    torch.jit.script(model).save(os.path.join(OUT, "layouts.pt"))
    proto = to_onnx(model, x[:1])
    onnx.checker.check_model(proto)
    onnx.save(proto, os.path.join(OUT, "layouts.onnx"))
    seen = {}
    for name in ("seq_proj", "inner_proj", "mixed_proj", "fc"):
        getattr(model, name).register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach().clone()))
    with torch.no_grad():
        model(x)
    n = x.shape[0]
    batch_first = {"seq_proj": seen["seq_proj"].permute(1, 0, 2),
                   "inner_proj": seen["inner_proj"].reshape(n, -1, seen["inner_proj"].shape[-1]),
                   # each image's rows, as a run of that image alone gives them
                   "mixed_proj": seen["mixed_proj"].reshape(-1, n, seen["mixed_proj"].shape[-1]).permute(1, 0, 2),
                   "fc": seen["fc"]}
    x.numpy().tofile(os.path.join(OUT, "layouts_input.bin"))
    shapes = {}
    for name, value in batch_first.items():
        value.contiguous().numpy().tofile(os.path.join(OUT, f"layouts_ref_{name}.bin"))
        shapes[name] = list(value.shape)
    with open(os.path.join(OUT, "layouts.json"), "w") as f:
        json.dump({"input_shape": list(x.shape), "modules": shapes,
                   "hook_shapes": {k: list(v.shape) for k, v in seen.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
