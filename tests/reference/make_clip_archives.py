#!/usr/bin/python3
"""Stand-ins for every archive OpenAI's clip.load downloads, shaped like the published files, with
no sidecar, and their reference features computed the official way (tests/cli/clip_archives_test.sh).

Usage: make_clip_archives.py OUT_DIR IMAGES_DIR PROMPTS.txt VOCABULARY.txt.gz

OpenAI publishes RN50.pt, RN101.pt, RN50x4.pt, RN50x16.pt, RN50x64.pt, ViT-B-32.pt, ViT-B-16.pt,
ViT-L-14.pt and ViT-L-14-336px.pt: TorchScript archives traced on CUDA in float16 with the methods
forward(image, text), encode_image and encode_text, and the root tensors input_resolution,
context_length and vocab_size (clip.load(jit=True) preprocesses at model.input_resolution.item()).
They cannot be downloaded here. Each stand-in is models/clip_standin.py's CLIP with that archive's
vision geometry (ModifiedResNet or ViT patch size, input resolution 224/288/384/448/336) and tiny
widths, traced like the published files (float64 trace edited into CUDA float16, as
make_fp16_clip_standin.py does; LayerNorms float32). ViT-B-16 is also traced without the
input_resolution tensor, so its resolution must come from the positional embedding, as OpenAI's
build_model computes it.

The references follow clip.py: PIL image → Resize(n_px, bicubic) → CenterCrop(n_px) → RGB →
ToTensor → Normalize(CLIP's mean, std) → encode_image, in float32 with the half-rounded weights (what
the CPU computes once the float16 casts are patched to float32). Text: clip_tokenizer_reference.py's
ids (zero padded to 77) → encode_text. Also a hook on a module inside the vision tower (the first
transformer block, sequence-first (L, N, D) → batch-first; or visual.layer1).

Writes OUT_DIR/NAME.pt, OUT_DIR/NAME.{image,text,module}.npy and OUT_DIR/index.json:
{"images": [sorted file names], "archives": {NAME: {"resolution", "module", "resolution_source"}}}.
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "models"))
import clip_standin  # noqa: E402
import clip_tokenizer_reference as tokref  # noqa: E402
from make_fp16_clip_standin import edit_like_cuda_fp16, to_precision  # noqa: E402

# name: (vision layers (ResNet stages) or None, patch size (ViT) or None, input resolution)
ARCHIVES = {
    "RN50": ((1, 1, 1, 1), None, 224),
    "RN101": ((1, 1, 2, 1), None, 224),
    "RN50x4": ((1, 1, 1, 1), None, 288),
    "RN50x16": ((1, 1, 1, 1), None, 384),
    "RN50x64": ((1, 1, 1, 1), None, 448),
    "ViT-B-32": (None, 32, 224),
    "ViT-B-16": (None, 16, 224),
    "ViT-L-14": (None, 14, 224),
    "ViT-L-14-336px": (None, 14, 336),
}
NO_RESOLUTION_TENSOR = {"ViT-B-16"}
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class OpenAIStyleCLIP(clip_standin.CLIP):
    """encode_image casts the images to the weights' dtype, as OpenAI's CLIP does (float16 on CUDA)."""

    @property
    def dtype(self):
        return self.visual.conv1.weight.dtype

    def encode_image(self, image):
        return self.visual(image.type(self.dtype))

    def encode_text(self, text):  # traced, not scripted (the base class exports it for scripting)
        return clip_standin.CLIP.encode_text(self, text)


def build(name):
    layers, patch, resolution = ARCHIVES[name]
    if layers is not None:
        model = OpenAIStyleCLIP(embed_dim=32, image_resolution=resolution, vision_layers=layers,
                                vision_width=8, vision_patch_size=None,
                                context_length=clip_standin.CONTEXT_LENGTH,
                                vocab_size=clip_standin.VOCAB_SIZE, transformer_width=32,
                                transformer_heads=2, transformer_layers=1)
    else:
        model = OpenAIStyleCLIP(embed_dim=32, image_resolution=resolution, vision_layers=1,
                                vision_width=64, vision_patch_size=patch,
                                context_length=clip_standin.CONTEXT_LENGTH,
                                vocab_size=clip_standin.VOCAB_SIZE, transformer_width=32,
                                transformer_heads=2, transformer_layers=1)
    if name not in NO_RESOLUTION_TENSOR:
        model.register_buffer("input_resolution", torch.tensor(resolution))
    for key, value in (("context_length", clip_standin.CONTEXT_LENGTH),
                       ("vocab_size", clip_standin.VOCAB_SIZE)):
        delattr(model, key)  # ints in the stand-in, tensors in OpenAI's archives
        model.register_buffer(key, torch.tensor(value))
    return model.eval(), resolution, layers is not None


def preprocess(resolution):
    """clip.py's _transform(n_px)."""
    return T.Compose([T.Resize(resolution, interpolation=T.InterpolationMode.BICUBIC),
                      T.CenterCrop(resolution), lambda image: image.convert("RGB"),
                      T.ToTensor(), T.Normalize(MEAN, STD)])


def token_ids(prompts_file, vocabulary):
    return torch.tensor(tokref.prompt_rows(prompts_file, tokref.Tokenizer(vocabulary)), dtype=torch.long)


def main():
    out_dir, images_dir, prompts_file, vocabulary = sys.argv[1:5]
    os.makedirs(out_dir, exist_ok=True)
    names = sorted(n for n in os.listdir(images_dir) if n.lower().endswith(IMAGE_EXTENSIONS))
    images = [Image.open(os.path.join(images_dir, n)) for n in names]
    text = token_ids(prompts_file, vocabulary)
    index = {"images": names, "archives": {}}
    for i, name in enumerate(ARCHIVES):
        torch.manual_seed(100 + i)
        model, resolution, resnet = build(name)
        to_precision(model, torch.float16)  # the published weights are half values
        to_precision(model, torch.float32)
        batch = torch.stack([preprocess(resolution)(image) for image in images])
        module = "visual.layer1" if resnet else "visual.transformer.resblocks.0"
        captured = {}
        hook = model.get_submodule(module).register_forward_hook(
            lambda m, inputs, output: captured.setdefault("out", output))
        with torch.no_grad():
            image_features = model.encode_image(batch)
            text_features = model.encode_text(text)
        hook.remove()
        tapped = captured["out"] if resnet else captured["out"].permute(1, 0, 2)  # LND → NLD
        np.save(os.path.join(out_dir, f"{name}.image.npy"), image_features.numpy())
        np.save(os.path.join(out_dir, f"{name}.text.npy"), text_features.numpy())
        np.save(os.path.join(out_dir, f"{name}.module.npy"), tapped.contiguous().numpy())

        # Trace in float64 (LayerNorms float32) at the archive's resolution, then edit the graphs to
        # look like a CUDA float16 trace and store float16 weights, as in the published files.
        to_precision(model, torch.float64)
        for _, b in model.named_buffers():  # BatchNorm statistics (0 and 1: exact in float16)
            if b.is_floating_point():
                b.data = b.data.to(torch.float64)
        example = torch.zeros(2, 3, resolution, resolution, dtype=torch.float64)
        with torch.no_grad():
            traced = torch.jit.trace_module(model, {"forward": (example, text[:2]),
                                                    "encode_image": (example,),
                                                    "encode_text": (text[:2],)},
                                             check_trace=False)
        casts, devices = edit_like_cuda_fp16(traced)
        if casts < 3 or devices < 1:
            sys.exit(f"{name}: found too little to edit: {casts} casts, {devices} device constants")
        for p in list(traced.parameters()) + list(traced.buffers()):
            if p.dtype == torch.float64:
                p.data = p.data.to(torch.float16)
        path = os.path.join(out_dir, f"{name}.pt")
        torch.jit.save(traced, path)
        loaded = torch.jit.load(path, map_location="cpu")
        if name in NO_RESOLUTION_TENSOR:
            if hasattr(loaded, "input_resolution"):
                sys.exit(f"{name}: the stand-in without input_resolution has one")
        elif int(loaded.input_resolution.item()) != resolution:
            sys.exit(f"{name}: input_resolution {loaded.input_resolution.item()} != {resolution}")
        if not any(p.dtype == torch.float16 for p in loaded.parameters()):
            sys.exit(f"{name}: the saved stand-in has no float16 parameters")
        index["archives"][name] = {
            "resolution": resolution, "module": module,
            "resolution_source": "positional embedding" if name in NO_RESOLUTION_TENSOR
            else "input_resolution"}
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    print(f"wrote {len(ARCHIVES)} CLIP archive stand-ins to {out_dir}")


if __name__ == "__main__":
    main()
