#!/usr/bin/env python3
"""Models for tests/model/cuda_test.cpp (issue #16), exported only where this Python's torch sees a GPU.

Usage: python3 export_cuda_models.py OUT_DIR

Always writes OUT_DIR/index.json: {"cuda": bool, "reason": str, ...}. Without a GPU nothing else is
written (the C++ tests then skip, or fail if their LibTorch does see a GPU: the two disagree).
With one:
  resnet18.pt, vit_b_16.pt, cornet_rt.pt  models/export.py --weights random --seed 0 (its sidecars too)
  input.f32            3 x 3 x 224 x 224 seeded normal float32, C order
  clip/                tests/reference/make_fp16_clip_standin.py's files (the OpenAI-style float16 /
                       "cuda" stand-in and its float32 references), plus
  clip/ref16_<name>.f32  the eager stand-in in float16 on the GPU (float16 weights, LayerNorms in float32,
                       as OpenAI's convert_weights leaves them): encode_image and visual.trunk, as float32
index.json then also lists "models" (name → file, modules, all_calls) and "clip" (shapes).
"""
import json
import os
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
MODELS = {  # name → (modules to compare, every call)
    "resnet18": (["layer3", "avgpool"], False),
    "vit_b_16": (["encoder.layers.encoder_layer_5", "encoder.ln"], False),
    "cornet_rt": (["V2.output", "IT.output"], True),
}


def main(out):
    os.makedirs(out, exist_ok=True)
    index = {"cuda": torch.cuda.is_available(), "torch": torch.__version__}
    if not index["cuda"]:
        index["reason"] = f"{sys.executable}'s torch {torch.__version__} sees no CUDA GPU"
        write_index(out, index)
        print(f"wrote {out}/index.json: no CUDA GPU, nothing exported")
        return
    index["reason"] = f"{torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} GPU(s)"
    index["models"] = {}
    for name, (modules, all_calls) in MODELS.items():
        subprocess.run([sys.executable, os.path.join(SOURCE, "models", "export.py"), "--arch", name,
                        "--weights", "random", "--seed", "0", "--out", out], check=True,
                       stdout=subprocess.DEVNULL)
        index["models"][name] = {"file": f"{name}.pt", "modules": modules, "all_calls": all_calls}
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(3, 3, 224, 224, generator=generator)
    image.numpy().astype("<f4").tofile(os.path.join(out, "input.f32"))
    index["input"] = list(image.shape)

    sys.path.insert(0, HERE)
    import make_fp16_clip_standin as standin
    clip_dir = os.path.join(out, "clip")
    standin.main(clip_dir)
    with open(os.path.join(clip_dir, "index.json")) as f:
        clip_index = json.load(f)
    torch.manual_seed(0)  # as standin.main: the same weights, rounded to float16 once
    model = standin.to_precision(standin.ClipStandin().eval(), torch.float16).cuda()
    shape = clip_index["image"]
    clip_image = torch.from_numpy(
        __import__("numpy").fromfile(os.path.join(clip_dir, "image.f32"), dtype="<f4").reshape(shape)).cuda()
    trunk = {}
    handle = model.visual.trunk.register_forward_hook(lambda m, i, o: trunk.setdefault("t", o))
    with torch.no_grad():
        encoded = model.encode_image(clip_image)
    handle.remove()
    refs = {"encode_image": encoded, "visual.trunk": trunk["t"]}
    index["clip"] = {}
    for name, ref in refs.items():
        if ref.dtype != torch.float16:
            sys.exit(f"the eager stand-in's {name} is {ref.dtype} on the GPU, not float16")
        ref.float().cpu().numpy().astype("<f4").tofile(os.path.join(clip_dir, f"ref16_{name}.f32"))
        index["clip"][name] = list(ref.shape)
    write_index(out, index)
    print(f"wrote {out}: {', '.join(MODELS)} and the float16 CLIP stand-in ({index['reason']})")


def write_index(out, index):
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cuda_data")
