#!/usr/bin/env python3
"""Stand-ins for OpenAI's CLIP archives (RN50.pt, ViT-B-32.pt) as published: traced on CUDA in
float16. CPU torch cannot trace in float16, so a small CLIP-like model is traced in float64 (its
LayerNorms in float32, like CLIP's fp32 LayerNorm subclass) and the graphs are then edited the way
a CUDA fp16 trace looks: every dtype argument 7 (double) becomes a NEW constant 5 (half), every
device constant "cpu" becomes "cuda", and the float64 parameters become float16 (LayerNorm stays
float32, as in CLIP's convert_weights).

Writes to OUT_DIR:
  clip_fp16.pt       the fp16/CUDA stand-in
  clip_fp32.pt       the same model traced in float32 with the half-rounded weights (no patching)
  image.f32, text.i64  inputs (2x3x16x16 images, 2x8 token ids)
  ref_<method>.f32   float32 references (eager, weights = the half-rounded values), 2 rows each:
                     encode_image, encode_text, forward (logits_per_image), visual.trunk (a module)
  index.json         shapes of all of the above
"""
import json
import os
import sys

import torch
from torch import nn


class LayerNorm(nn.LayerNorm):
    """CLIP's LayerNorm: computes in float32 whatever the input dtype, returns the input dtype."""

    def forward(self, x):
        orig_type = x.dtype
        ret = super().forward(x.type(torch.float32))
        return ret.type(orig_type)


class Visual(nn.Module):
    def __init__(self, width=12, tokens=4, out=6):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=8, stride=8, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width))
        self.positional_embedding = nn.Parameter(torch.randn(tokens + 1, width) * 0.1)
        self.ln_pre = LayerNorm(width)
        self.trunk = nn.Linear(width, width)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, out) * 0.3)

    def forward(self, x):
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(
            x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device)
        x = torch.cat([cls, x], dim=1)
        x = x + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        x = torch.relu(self.trunk(x))
        x = self.ln_post(x[:, 0, :])
        return x @ self.proj


class ClipStandin(nn.Module):
    def __init__(self, vocab=20, context=8, width=12, out=6):
        super().__init__()
        self.visual = Visual(width=width, out=out)
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(torch.randn(context, width) * 0.1)
        self.mixer = nn.Linear(width, width)
        self.ln_final = LayerNorm(width)
        self.text_projection = nn.Parameter(torch.randn(width, out) * 0.3)
        self.logit_scale = nn.Parameter(torch.tensor(2.0))

    @property
    def dtype(self):
        return self.visual.conv1.weight.dtype

    def encode_image(self, image):
        return self.visual(image.type(self.dtype))

    def encode_text(self, text):
        x = self.token_embedding(text).type(self.dtype)
        x = x + self.positional_embedding.type(self.dtype)
        x = torch.tanh(self.mixer(x))
        x = self.ln_final(x).type(self.dtype)
        x = x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection
        return x

    def forward(self, image, text):
        image_features = self.encode_image(image)
        text_features = self.encode_text(text)
        image_features = image_features / image_features.norm(dim=1, keepdim=True)
        text_features = text_features / text_features.norm(dim=1, keepdim=True)
        return self.logit_scale.exp() * image_features @ text_features.t()


def is_layernorm_param(name):
    return "ln_" in name


def to_precision(model, dtype):
    """Parameters in `dtype`, LayerNorm parameters in float32 (CLIP's convert_weights)."""
    for name, p in model.named_parameters():
        p.data = p.data.to(torch.float32 if is_layernorm_param(name) else dtype)
    return model


def graphs(traced):
    """Every method graph of every module (forward, forward1, encode_image, ...); editing twice is
    harmless: the second pass finds nothing left to edit."""
    for module in [traced] + list(traced.modules()):
        for name in module._c._method_names():
            yield module._c._get_method(name).graph


def all_nodes(block):
    for node in block.nodes():
        yield node
        for sub in node.blocks():
            yield from all_nodes(sub)


def edit_like_cuda_fp16(traced):
    """dtype 7 → new constant 5 at each use; device "cpu" → "cuda". Returns counts."""
    casts = devices = 0
    for graph in graphs(traced):
        for node in list(all_nodes(graph.block())):
            if node.kind() == "prim::Constant" and node.output().type().kind() == "DeviceObjType":
                if str(node.output().toIValue()) == "cpu":
                    new = graph.insertConstant(torch.device("cuda"))
                    new.node().moveBefore(node)
                    node.output().replaceAllUsesWith(new)
                    devices += 1
                continue
            schema = None
            try:
                schema = node.schema()
            except RuntimeError:
                pass
            if not schema or schema == "(no schema)":
                continue
            for i, arg in enumerate(torch._C.parse_schema(schema).arguments):
                if arg.name != "dtype" or i >= node.inputsSize():
                    continue
                value = node.inputsAt(i)
                if value.node().kind() == "prim::Constant" and value.toIValue() == 7:
                    half = graph.insertConstant(5)
                    half.node().moveBefore(node)
                    node.replaceInput(i, half)
                    casts += 1
    return casts, devices


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    model = ClipStandin().eval()
    # The published weights: half values. Round once; every model below uses these values.
    to_precision(model, torch.float16)
    image = torch.randn(2, 3, 16, 16)
    text = torch.tensor([[1, 5, 7, 19, 0, 0, 0, 0], [1, 3, 3, 4, 9, 19, 0, 0]])

    # float32 reference: the half-rounded values in float32.
    to_precision(model, torch.float32)
    refs = {}
    with torch.no_grad():
        refs["encode_image"] = model.encode_image(image)
        refs["encode_text"] = model.encode_text(text)
        refs["forward"] = model(image, text)
        trunk = {}
        handle = model.visual.trunk.register_forward_hook(lambda m, i, o: trunk.setdefault("t", o))
        model.encode_image(image)
        handle.remove()
        refs["visual.trunk"] = trunk["t"]
        traced32 = torch.jit.trace_module(model, {"forward": (image, text),
                                                  "encode_image": (image,),
                                                  "encode_text": (text,)})
    torch.jit.save(traced32, os.path.join(out_dir, "clip_fp32.pt"))

    # Trace in float64 (LayerNorms float32), then edit to look like a CUDA fp16 trace.
    to_precision(model, torch.float64)
    with torch.no_grad():
        traced = torch.jit.trace_module(model, {"forward": (image.double(), text),
                                                "encode_image": (image.double(),),
                                                "encode_text": (text,)})
    casts, devices = edit_like_cuda_fp16(traced)
    if casts < 5 or devices < 1:
        sys.exit(f"stand-in editing found too little to edit: {casts} casts, {devices} devices")
    for name, p in traced.named_parameters():
        if p.dtype == torch.float64:
            p.data = p.data.to(torch.float16)
    # Parameters on "CUDA" cannot be faked; the archive's graphs are what OpenAI's loader patches.
    path = os.path.join(out_dir, "clip_fp16.pt")
    torch.jit.save(traced, path)

    # Sanity: the saved archive holds the edits, and fails on CPU as OpenAI's files do.
    loaded = torch.jit.load(path, map_location="cpu")
    code = loaded.encode_image.code + loaded.visual.code
    if "torch.device(\"cuda\")" not in code or "5" not in code:
        sys.exit("the saved stand-in lost its cuda/half edits:\n" + code)
    if not any(p.dtype == torch.float16 for p in loaded.parameters()):
        sys.exit("the saved stand-in has no float16 parameters")
    try:
        loaded.encode_image(image)
        sys.exit("the fp16/cuda stand-in unexpectedly runs on CPU unpatched")
    except RuntimeError:
        pass

    image.numpy().astype("<f4").tofile(os.path.join(out_dir, "image.f32"))
    text.numpy().astype("<i8").tofile(os.path.join(out_dir, "text.i64"))
    index = {"image": list(image.shape), "text": list(text.shape), "casts": casts,
             "devices": devices, "refs": {}}
    for name, ref in refs.items():
        ref.numpy().astype("<f4").tofile(os.path.join(out_dir, f"ref_{name}.f32"))
        index["refs"][name] = list(ref.shape)
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    print(f"wrote {out_dir}: {casts} half casts, {devices} cuda device constants")


if __name__ == "__main__":
    main(sys.argv[1])
