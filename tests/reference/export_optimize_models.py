#!/usr/bin/python3
"""Exports small seeded TorchScript models for tests/model/model_optimize_test.cpp and their references.

Usage: /usr/bin/python3 export_optimize_models.py OUTPUT_DIR

Models whose forward writes into its input tensor (x.mul_(2) in forward, x.add_(1) in a submodule),
one that never does (conv, batch norm, an in-place ReLU on its own activations; also as plain.onnx
for the OpenCV DNN backend), and "cancel", whose plain graph loses ~4e-4 relative to float32
cancellation (conv bias 1e4 minus batch-norm mean 1e4) that conv-BN folding avoids, so that
ModelOptions::optimize drops the optimized graph; index.json holds the relative difference Python's
torch.jit.freeze + optimize_for_inference shows on its input. "gelu_tanh": a conv + GELU(tanh) whose
optimized graph fails to run (mkldnn_gelu), as timm's MaxViT does; index.json says whether it fails
in Python's torch too. "tokens_mlp": a patch convolution, then linear layers on the tokens (a
transformer's shape), which ModelOptions::optimize freezes without optimize_for_inference. For each:
OUTPUT_DIR/<name>.script.pt (and <name>.trace.pt for inplace_mul), the input batch as raw float32,
and the outputs Python forward hooks see for the listed modules (run on a copy of the input, so the
in-place op happens once, as in THINGSvision), batch first, as raw float32. OUTPUT_DIR/index.json
lists files and shapes.
"""
import json
import os
import sys

import torch
import torch.nn as nn

# torch.onnx.export with the same exporter on every torch (models/export.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
from export import onnx_export  # noqa: E402

OUT = sys.argv[1] if len(sys.argv) > 1 else "model_optimize_data"


class InPlaceMul(nn.Module):
    """forward doubles its input in place before the convolution."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        x.mul_(2.0)
        return self.pool(torch.relu(self.bn(self.conv(x))))


class AddOne(nn.Module):
    def forward(self, x):
        x.add_(1.0)
        return x


class Tokens(nn.Module):
    """N×C×H×W → sequence first (H·W, N, C), like CLIP's transformer input."""

    def forward(self, x):
        return x.flatten(2).permute(2, 0, 1)


class InPlaceAddSeq(nn.Module):
    """A submodule adds 1 to the input in place; the output is sequence first and, for a batch of
    as many images as tokens, ambiguous (the backend's one-image probe runs)."""

    def __init__(self):
        super().__init__()
        self.prep = AddOne()
        self.conv = nn.Conv2d(3, 8, 1)
        self.tokens = Tokens()

    def forward(self, x):
        return self.tokens(self.conv(self.prep(x)))


class Plain(nn.Module):
    """Never writes into its input (its in-place ReLU works on the batch norm's output)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(self.relu(self.bn(self.conv(x)))).flatten(1)


class Cancel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(self.conv(x))


class GeluTanh(nn.Module):
    """optimize_for_inference turns the conv + GELU(approximate="tanh") into mkldnn ops, and the
    optimized graph then fails to run (mkldnn_gelu has no tanh approximation; timm's MaxViT)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.act = nn.GELU(approximate="tanh")
        self.head = nn.Conv2d(8, 4, 3)

    def forward(self, x):
        return self.head(self.act(self.conv(x)))


class TokensMlp(nn.Module):
    """One patch convolution, then two linear layers and a layer norm on batch-first tokens."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.fc1 = nn.Linear(8, 16)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(16, 8)
        self.norm = nn.LayerNorm(8)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        return self.norm(tokens + self.fc2(self.act(self.fc1(tokens)))).mean(1)


def cancelling():
    model = Cancel().eval()
    with torch.no_grad():
        model.conv.bias.fill_(1e4)
        model.bn.running_mean.fill_(1e4)
        model.bn.running_var.fill_(1.0)
    return model


def seeded(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def write_raw(path, tensor):
    tensor.detach().to(torch.float32).contiguous().numpy().tofile(path)


def hook_outputs(model, names, x, seq_first=()):
    """Forward-hook outputs (clone) of `names` for model(x.clone()), batch first."""
    modules = dict(model.named_modules())
    seen = {}
    handles = [modules[n].register_forward_hook(
        lambda _m, _i, out, n=n: seen.__setitem__(n, out.detach().clone())) for n in names]
    with torch.no_grad():
        model(x.clone())
    for h in handles:
        h.remove()
    return {n: seen[n].permute(1, 0, 2) if n in seq_first else seen[n] for n in names}


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    index = {}
    specs = [
        ("inplace_mul", seeded(InPlaceMul()), (3, 3, 8, 8), ["conv", "bn", "pool"], (), True),
        ("inplace_add_seq", seeded(InPlaceAddSeq()), (4, 3, 2, 2), ["conv", "tokens"], ("tokens",), False),
        ("plain", seeded(Plain()), (3, 3, 8, 8), ["conv", "relu", "pool"], (), False),
        ("cancel", cancelling(), (2, 3, 8, 8), ["bn"], (), False),
        ("gelu_tanh", GeluTanh().eval(), (2, 3, 16, 16), ["act", "head"], (), False),
        ("tokens_mlp", TokensMlp().eval(), (3, 3, 16, 16), ["fc1", "norm"], (), False),
    ]
    for name, model, shape, names, seq_first, trace in specs:
        x = torch.randn(*shape)
        exports = {"script": f"{name}.script.pt"}
        torch.jit.script(model).save(os.path.join(OUT, exports["script"]))
        if trace:
            exports["trace"] = f"{name}.trace.pt"
            with torch.no_grad():
                torch.jit.trace(model, x.clone()).save(os.path.join(OUT, exports["trace"]))
        write_raw(os.path.join(OUT, f"{name}.input.bin"), x)
        refs = {}
        for module, out in hook_outputs(model, names, x, seq_first).items():
            f = f"{name}.{module}.bin"
            write_raw(os.path.join(OUT, f), out)
            refs[module] = {"file": f, "shape": list(out.shape)}
        index[name] = {"exports": exports, "input": {"file": f"{name}.input.bin", "shape": list(shape)},
                       "modules": refs}
        if name == "plain":
            exports["onnx"] = "plain.onnx"
            onnx_export(model, x.clone(), os.path.join(OUT, "plain.onnx"), opset_version=11,
                        input_names=["input"], output_names=["output"])
        if name == "gelu_tanh":  # the failure the test relies on, seen in this torch too
            try:
                torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(model)))(x.clone())
                index[name]["python_optimized_fails"] = False
            except RuntimeError:
                index[name]["python_optimized_fails"] = True
        if name == "cancel":
            with torch.no_grad():
                plain = torch.jit.script(model)(x.clone()).double()
                frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(model)))
                optimized = frozen(x.clone()).double()
            index[name]["python_optimize_difference"] = (
                (optimized - plain).abs().max() / plain.abs().max()).item()
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump(index, f, indent=1)


if __name__ == "__main__":
    main()
