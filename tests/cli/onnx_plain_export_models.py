#!/usr/bin/python3
"""onnx_plain_export_models.py OUT_DIR [ARCH...] — plain torch.onnx.export files for tests/cli/onnx_plain_export_test.sh.

Seeded-random torchvision models (default resnet18, mobilenet_v3_small and mobilenet_v2; default BatchNorm initialisation, so that
torch 1.13 deduplicates the folded biases into Identity nodes), each written
  OUT_DIR/ARCH.onnx — torch.onnx.export(model, x, f, input_names=["input"],
                      dynamic_axes={"input": {0: "batch"}}): default opset, constant folding,
                      BatchNorm folded into the convolutions; nothing removed afterwards
  OUT_DIR/ARCH.pt   — torch.jit.script of the same model (its weights feed the forward-hook reference)
and prints "ARCH IDENTITY_NODES" per model.
"""
import inspect
import os
import sys
import warnings

import onnx
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
import export  # noqa: E402


def main() -> None:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    warnings.simplefilter("ignore")
    for arch in sys.argv[2:] or ("resnet18", "mobilenet_v3_small", "mobilenet_v2"):
        built = export.build(arch, "random", 0, None, None)
        path = os.path.join(out, arch + ".onnx")
        kwargs = {}
        if "dynamo" in inspect.signature(torch.onnx.export).parameters:
            kwargs["dynamo"] = False  # torch >= 2.9 defaults to the dynamo exporter (needs onnxscript)
        torch.onnx.export(built.model, export.example_input(built), path, input_names=["input"],
                          dynamic_axes={"input": {0: "batch"}}, **kwargs)
        torch.jit.save(torch.jit.script(built.model), os.path.join(out, arch + ".pt"))
        identities = sum(n.op_type == "Identity" for n in onnx.load(path).graph.node)
        print(arch, identities)


if __name__ == "__main__":
    main()
