#!/usr/bin/python3
"""Exports small seeded TorchScript models for tests/model/model_test.cpp and their reference activations.

Usage: /usr/bin/python3 export_test_models.py OUTPUT_DIR

For every model: OUTPUT_DIR/<name>.script.pt and/or <name>.trace.pt (the eager repr stored as the
archive's extra file "module_tree.txt"), the input batches as raw float32, and for every listed module
the outputs Python forward hooks see (register_forward_hook + clone, THINGSvision's semantics), every
call in call order, as raw float32. OUTPUT_DIR/index.json describes it all (shapes, files, the eager
named_modules() names and types). Weights, BatchNorm statistics and inputs are seeded.
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torchvision

OUT = sys.argv[1] if len(sys.argv) > 1 else "model_data"


class Pair(nn.Module):
    """Returns a tuple, to test tuple_index."""

    def forward(self, x):
        return x * 2.0, x + 1.0


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.act = nn.GELU()

    def forward(self, x):
        return x + self.act(self.fc(x))


class SeqFirstBase(nn.Module):
    """A CLIP-like stand-in: its blocks work sequence-first (L, N, D)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(3, 8)
        self.blocks = nn.ModuleList([Block(8), Block(8)])
        self.pair = Pair()
        self.ln = nn.LayerNorm(8)
        # Called under an attribute test (folded at extraction) and emits no op of its own.
        self.use_extra = True
        self.extra = nn.Identity()

    def forward(self, x):
        x = self.embed(x.flatten(2).transpose(1, 2))  # N, L, D
        x = x.permute(1, 0, 2)  # L, N, D
        for block in self.blocks:
            x = block(x)
        if self.use_extra:
            x = self.extra(x)
        a, b = self.pair(x)
        x = (a + b).permute(1, 0, 2)
        return self.ln(x).mean(1)


class SeqFirst(SeqFirstBase):
    """SeqFirstBase with an encode_image method (scripted only: tracing refuses exported methods)."""

    @torch.jit.export
    def encode_image(self, image):
        return self.forward(image) * 3.0


class MergedRows(nn.Module):
    """TNT-like: `inner` sees the tokens of every patch of every image as one batch of sequences,
    merged image by image, (N·4, 4, D); `mixed` gets them merged patch by patch, (4·N, 4, D), which no
    split into N rows undoes."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(3, 6)
        self.inner = Block(6)
        self.mixed = Block(6)

    def forward(self, x):
        n = x.shape[0]
        tokens = self.embed(x.flatten(2).transpose(1, 2))  # N, 16, 6
        inner = self.inner(tokens.reshape(n * 4, 4, 6))
        mixed = self.mixed(inner.reshape(n, 4, 4, 6).transpose(0, 1).reshape(4 * n, 4, 6))
        return mixed.reshape(4, n, 4, 6).transpose(0, 1).reshape(n, 16, 6).mean(1)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x, y):
        return self.fc(x) + y


class DefaultArg(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x, scale: float = 2.0):
        return self.conv(x) * scale


def small_alexnet():
    # torchvision's alexnet with the same module names but a small classifier (the full one is 230 MB).
    m = torchvision.models.alexnet()
    m.avgpool = nn.AdaptiveAvgPool2d((2, 2))
    m.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(256 * 4, 64), nn.ReLU(inplace=True),
                                 nn.Dropout(0.5), nn.Linear(64, 64), nn.ReLU(inplace=True),
                                 nn.Linear(64, 10))
    return m


def small_vgg11_bn():
    # torchvision's vgg11_bn with the same module names but a small classifier.
    m = torchvision.models.vgg11_bn()
    m.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    m.classifier = nn.Sequential(nn.Linear(512, 64), nn.ReLU(True), nn.Dropout(0.5),
                                 nn.Linear(64, 64), nn.ReLU(True), nn.Dropout(0.5), nn.Linear(64, 10))
    return m


def small_vit():
    # Same module names as vit_b_16 (12 encoder layers), tiny dimensions.
    return torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=12,
                                                num_heads=2, hidden_dim=16, mlp_dim=32,
                                                num_classes=10)


# name: (constructor, inputs {name: shape}, modules [(name, tuple_index, layout)], exports); layout:
# False (batch first), True (sequence-first (L, N, D)), "merged" ((N·k, ...) → (N, k, ...)).
MODELS = {
    "alexnet": (small_alexnet, {"main": (2, 3, 64, 64)},
                [("features.10", 0, False), ("features.11", 0, False), ("classifier.4", 0, False),
                 ("features", 0, False)], ["script", "trace"]),
    "resnet18": (lambda: torchvision.models.resnet18(num_classes=10), {"main": (2, 3, 64, 64)},
                 [("layer4.1.relu", 0, False), ("avgpool", 0, False), ("layer3", 0, False),
                  ("relu", 0, False), ("layer1.0", 0, False), ("layer1.0.conv1", 0, False),
                  ("fc", 0, False)], ["script", "trace"]),
    "vgg11_bn": (small_vgg11_bn, {"main": (2, 3, 64, 64)},
                 [("features.0", 0, False), ("features.1", 0, False), ("classifier.3", 0, False)],
                 ["script", "trace"]),
    "densenet121": (lambda: torchvision.models.densenet121(num_classes=10), {"main": (2, 3, 64, 64)},
                    [("features.denseblock2", 0, False), ("features.transition1.pool", 0, False),
                     ("classifier", 0, False)], ["script", "trace"]),
    "mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(num_classes=10), {"main": (2, 3, 64, 64)},
                           [("features.3", 0, False), ("features.4.block.2", 0, False),
                            ("classifier.0", 0, False)], ["script", "trace"]),
    "googlenet": (lambda: torchvision.models.googlenet(num_classes=10, aux_logits=True,
                                                                init_weights=True),
                  {"main": (2, 3, 64, 64)},
                  [("inception4a", 0, False), ("inception5b.branch4", 0, False), ("avgpool", 0, False),
                   ("fc", 0, False)], ["script", "trace"]),
    "vit": (small_vit, {"main": (2, 3, 32, 32)},
            [("encoder.layers.encoder_layer_1", 0, False), ("encoder.layers.encoder_layer_11", 0, False),
             ("encoder.ln", 0, False), ("encoder.layers.encoder_layer_0.self_attention", 0, False),
             ("heads", 0, False)], ["script", "trace"]),
    "seqfirst": (SeqFirst, {"main": (3, 3, 2, 2), "ambiguous": (4, 3, 2, 2)},
                 [("blocks.0", 0, True), ("blocks.1", 0, True), ("extra", 0, True), ("pair", 0, True),
                  ("pair", 1, True),
                  ("ln", 0, False)], ["script", "trace"]),
    # "ambiguous": 4 images, as many as each patch has tokens: (16, 4, 6) also fits sequence-first.
    "merged": (MergedRows, {"main": (3, 3, 4, 4), "ambiguous": (4, 3, 4, 4)},
               [("inner", 0, "merged"), ("embed", 0, False)], ["script"]),
}


def seeded(constructor):
    torch.manual_seed(0)
    model = constructor()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model.eval()


def write_raw(path, tensor):
    tensor.detach().to(torch.float32).contiguous().numpy().tofile(path)


def references(model, x, modules, method="forward"):
    """Runs `method` once with forward hooks; returns {(module, tuple_index): [every call's output]}."""
    named = dict(model.named_modules())
    calls = {name: [] for name, _, _ in modules}
    handles = []
    for name in calls:
        def hook(_module, _inputs, output, name=name):
            # Cloned at once, as THINGSvision does: later in-place ops must not change it.
            if isinstance(output, (tuple, list)):
                output = type(output)(o.clone() if torch.is_tensor(o) else o for o in output)
            else:
                output = output.clone()
            calls[name].append(output)
        handles.append(named[name].register_forward_hook(hook))
    with torch.no_grad():
        final = getattr(model, method)(x)
    for h in handles:
        h.remove()
    result = {}
    for name, tuple_index, layout in modules:
        outs = []
        for out in calls[name]:
            if isinstance(out, (tuple, list)):
                out = out[tuple_index]
            if layout == "merged":
                out = out.reshape(x.shape[0], -1, *out.shape[1:])
            elif layout:
                out = out.permute(1, 0, 2)
            outs.append(out)
        result[(name, tuple_index)] = outs
    return final, result


def export(name, spec, index):
    constructor, inputs, modules, exports = spec
    model = seeded(constructor)
    entry = {"module_names": [], "module_types": [], "exports": {}, "inputs": {}}
    for module_name, module in model.named_modules():
        if module_name:
            entry["module_names"].append(module_name)
            entry["module_types"].append(type(module).__name__)
    torch.manual_seed(2)
    batches = {key: torch.randn(*shape) for key, shape in inputs.items()}
    methods = ["forward"] + (["encode_image"] if hasattr(model, "encode_image") else [])
    for key, x in batches.items():
        x_file = f"{name}.{key}.input.bin"
        write_raw(os.path.join(OUT, x_file), x)
        item = {"file": x_file, "shape": list(x.shape), "methods": {}}
        for method in methods:
            final, refs = references(model, x, modules, method)
            if isinstance(final, (tuple, list)):
                final = final[0]
            out_file = f"{name}.{key}.{method}.output.bin"
            write_raw(os.path.join(OUT, out_file), final)
            mods = []
            for (module_name, tuple_index), outs in refs.items():
                files = []
                for call, out in enumerate(outs):
                    f = f"{name}.{key}.{method}.{module_name}.{tuple_index}.{call}.bin"
                    write_raw(os.path.join(OUT, f), out)
                    files.append({"file": f, "shape": list(out.shape)})
                mods.append({"module": module_name, "tuple_index": tuple_index, "calls": files})
            item["methods"][method] = {"output": {"file": out_file, "shape": list(final.shape)},
                                       "modules": mods}
        entry["inputs"][key] = item
    example = batches["main"]
    for how in exports:
        if how == "script":
            ts = torch.jit.script(model)
        else:
            traced = seeded(SeqFirstBase) if name == "seqfirst" else model
            with torch.no_grad():
                ts = torch.jit.trace(traced, example, check_trace=False)
        path = os.path.join(OUT, f"{name}.{how}.pt")
        torch.jit.save(ts, path, _extra_files={"module_tree.txt": repr(model)})
        entry["exports"][how] = os.path.basename(path)
    entry["module_tree"] = repr(model)
    index[name] = entry


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    only = sys.argv[2:]  # optional subset of model names, for debugging
    index = {}
    for name, spec in MODELS.items():
        if not only or name in only:
            export(name, spec, index)
    # Files that must be refused: not TorchScript, a state dict, a forward with a second input;
    # and a forward whose second input has a default (accepted).
    with open(os.path.join(OUT, "not_torchscript.pt"), "wb") as f:
        f.write(b"this is not a zip archive\n")
    torch.save(seeded(DefaultArg).state_dict(), os.path.join(OUT, "state_dict.pt"))
    torch.jit.save(torch.jit.script(seeded(TwoInputs)), os.path.join(OUT, "two_inputs.script.pt"))
    default_arg = seeded(DefaultArg)
    torch.jit.save(torch.jit.script(default_arg), os.path.join(OUT, "default_arg.script.pt"))
    torch.manual_seed(3)
    x = torch.randn(2, 3, 8, 8)
    write_raw(os.path.join(OUT, "default_arg.input.bin"), x)
    with torch.no_grad():
        write_raw(os.path.join(OUT, "default_arg.output.bin"), default_arg(x))
    index["default_arg"] = {"input_shape": list(x.shape)}
    tmp = os.path.join(OUT, "index.json.tmp")
    with open(tmp, "w") as f:
        json.dump(index, f, indent=1)
    os.replace(tmp, os.path.join(OUT, "index.json"))


if __name__ == "__main__":
    main()
