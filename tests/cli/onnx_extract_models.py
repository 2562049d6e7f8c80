#!/usr/bin/python3
"""onnx_extract_models.py OUT_DIR — models for tests/cli/onnx_extract_test.sh, made by models/export.py.

One seeded-random torchvision resnet18 (BatchNorm weights, biases and running statistics randomised:
with their defaults torch 1.13 deduplicates the initializers and BN is an identity), written
  OUT_DIR/pt/resnet18.pt   + resnet18.json   (models/export.py's TorchScript path and sidecar)
  OUT_DIR/onnx/resnet18.onnx + resnet18.json (models/export.py's export_onnx and its sidecar)
  OUT_DIR/nhwc/resnet18.onnx + resnet18.json (a wrapper that permutes an N x H x W x C input to NCHW
      first, exported as export_onnx does; sidecar "input_layout": "nhwc")
  OUT_DIR/bad.onnx (not a protobuf)
"""
import io
import os
import sys

import onnx
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
import export  # noqa: E402


class NhwcInput(torch.nn.Module):
    """Takes N x H x W x C images (as a Keras model converted without --inputs-as-nchw)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.permute(0, 3, 1, 2))


def main() -> None:
    out = sys.argv[1]
    built = export.build("resnet18", "random", 0, None, None)
    torch.manual_seed(1)
    with torch.no_grad():
        for m in built.model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)

    # TorchScript, as export.export() writes it.
    scripted, method, note = export.to_torchscript(built)
    os.makedirs(os.path.join(out, "pt"), exist_ok=True)
    pt_path = os.path.join(out, "pt", "resnet18.pt")
    torch.jit.save(scripted, pt_path, _extra_files={"module_tree.txt": repr(built.model)})
    export._write_json(os.path.join(out, "pt", "resnet18.json"), export.sidecar("resnet18", built, pt_path, method, note))

    # ONNX, as export.py --format onnx writes it.
    export.export_onnx("resnet18", built, os.path.join(out, "onnx"))

    # ONNX with an NHWC input.
    buffer = io.BytesIO()
    with torch.no_grad():
        export.onnx_export(NhwcInput(built.model).eval(), export.example_input(built).permute(0, 2, 3, 1),
                           buffer, input_names=["input"], output_names=["output"],
                           opset_version=export.ONNX_OPSET, dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                           do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE)
    proto = onnx.load_from_string(buffer.getvalue())
    export.remove_identity_nodes(proto.graph)
    onnx.checker.check_model(proto)
    os.makedirs(os.path.join(out, "nhwc"), exist_ok=True)
    path = os.path.join(out, "nhwc", "resnet18.onnx")
    onnx.save(proto, path)
    doc = export.sidecar("resnet18", built, path, "onnx", None, fmt="onnx")
    doc["input_layout"] = "nhwc"
    export._write_json(os.path.join(out, "nhwc", "resnet18.json"), doc)

    with open(os.path.join(out, "bad.onnx"), "wb") as f:
        f.write(b"this is not an ONNX protobuf\n" * 4)


if __name__ == "__main__":
    main()
