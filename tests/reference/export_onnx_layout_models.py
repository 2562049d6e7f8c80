#!/usr/bin/python3
"""Exports one small seeded torch model to ONNX twice, taking NCHW and taking NHWC input (as tf2onnx
leaves a Keras model), for the layout tests of tests/model/opencv_dnn_formats_test.cpp.

Usage: /usr/bin/python3 export_onnx_layout_models.py OUTPUT_DIR

Writes OUTPUT_DIR/small_nchw.onnx, small_nhwc.onnx (the same weights; a subclass whose forward first
permutes its NHWC input to NCHW, so the module paths are the same), small.pt (scripted), input.npy
(NCHW float32, height != width) and ref_<module>.npy: what PyTorch forward hooks see (NCHW).
"""
import os
import sys

import numpy as np
import onnx
import torch

# torch.onnx.export with the same exporter on every torch (models/export.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
from export import onnx_export  # noqa: E402

OUT = sys.argv[1] if len(sys.argv) > 1 else "onnx_layout_data"
MODULES = ["conv1", "relu", "conv2", "pool", "fc"]


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.relu = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(4, 6, 3, stride=2)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(6 * 2 * 3, 5)

    def forward(self, x):
        x = self.pool(self.conv2(self.relu(self.conv1(x))))
        return self.fc(torch.flatten(x, 1))


class SmallNhwc(Small):
    def forward(self, x):
        return super().forward(x.permute(0, 3, 1, 2))


def export(model, x, path):
    with torch.no_grad():
        onnx_export(model, x, path, input_names=["input"], output_names=["output"],
                    opset_version=13, do_constant_folding=False,
                    dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    onnx.checker.check_model(onnx.load(path))


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(3)
    model = Small().eval()
    nhwc = SmallNhwc().eval()
    nhwc.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 11, 14)  # conv2 → 5 × 6, pool → 2 × 3
    export(model, x[:1], os.path.join(OUT, "small_nchw.onnx"))
    export(nhwc, x[:1].permute(0, 2, 3, 1), os.path.join(OUT, "small_nhwc.onnx"))
    torch.jit.script(model).save(os.path.join(OUT, "small.pt"))

    seen = {}
    named = dict(model.named_modules())
    for name in MODULES:
        named[name].register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach().numpy().copy()))
    with torch.no_grad():
        model(x)
        # The NHWC export computes the same outputs (checked here, independently of OpenCV).
        assert torch.allclose(model(x), nhwc(x.permute(0, 2, 3, 1)), atol=1e-6)
    np.save(os.path.join(OUT, "input.npy"), x.numpy().astype(np.float32))
    for name in MODULES:
        np.save(os.path.join(OUT, f"ref_{name}.npy"), seen[name].astype(np.float32))


if __name__ == "__main__":
    main()
