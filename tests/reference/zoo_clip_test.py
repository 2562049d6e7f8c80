"""CLIP stand-ins (models/clip_standin.py): exported TorchScript has encode_image, encode_text
and forward with OpenAI's module names; outputs equal the eager model's; the transformers are
sequence-first; the sidecar names encode_image and the clip preprocessing.
  zoo_clip_test.py WORK_DIR ARCH"""
import json
import sys

import torch

import zoo_common as zc
import clip_standin

arch = sys.argv[2]
out = zc.work_dir(arch)
scripted, eager = zc.export_random(arch, 2, out, clip_standin.build)

g = torch.Generator().manual_seed(4)
image = torch.randn(3, 3, 224, 224, generator=g)
text = torch.zeros(3, 77, dtype=torch.long)
for i, length in enumerate([2, 9, 77]):  # start token, ids, end token (the largest id)
    text[i, 0] = 49406
    text[i, 1:length - 1] = torch.randint(1, 49406, (max(length - 2, 0),), generator=g)
    text[i, length - 1] = 49407
with torch.no_grad():
    zc.check_close(eager.encode_image(image), scripted.encode_image(image), "encode_image")
    zc.check_close(eager.encode_text(text), scripted.encode_text(text), "encode_text")
    zc.check_close(eager(image, text)[0], scripted(image, text)[0], "forward logits")

names = {n for n, _ in scripted.named_modules()}
common = ["visual", "transformer", "transformer.resblocks.0", "transformer.resblocks.1.attn",
          "transformer.resblocks.1.mlp.c_fc", "token_embedding", "ln_final"]
specific = (["visual.layer1", "visual.layer2", "visual.layer3", "visual.layer4", "visual.attnpool",
             "visual.conv1", "visual.layer4.0.downsample.-1"] if "rn50" in arch else
            ["visual.conv1", "visual.ln_pre", "visual.transformer.resblocks.0",
             "visual.transformer.resblocks.1", "visual.transformer.resblocks.1.attn",
             "visual.ln_post"])
missing = [n for n in common + specific if n not in names]
zc.check(not missing, f"{arch}: module names missing: {missing}")
params = {n for n, _ in scripted.named_parameters()}
for n in ["positional_embedding", "text_projection", "logit_scale"] + (
        ["visual.class_embedding", "visual.positional_embedding", "visual.proj"]
        if "vit" in arch else ["visual.attnpool.positional_embedding"]):
    zc.check(n in params, f"{arch}: parameter {n} missing")

# Sequence-first transformers: a resblock's output is (L, N, D).
shapes = {}
modules = dict(eager.named_modules())
watch = ["transformer.resblocks.0"] + (["visual.transformer.resblocks.0"] if "vit" in arch else [])
for n in watch:
    modules[n].register_forward_hook(lambda _m, _i, o, n=n: shapes.__setitem__(n, tuple(o.shape)))
with torch.no_grad():
    eager.encode_text(text)
    eager.encode_image(image)
zc.check(shapes["transformer.resblocks.0"] == (77, 3, 32), f"text resblock {shapes}")
if "vit" in arch:
    zc.check(shapes["visual.transformer.resblocks.0"] == (50, 3, 64), f"visual resblock {shapes}")

with open(f"{out}/{arch}.json") as f:
    side = json.load(f)
prep = side["preprocessing"]
zc.check(side["entry_method"] == "encode_image", "entry_method")
zc.check(prep["preset"] == "clip" and prep["interpolation"] == "bicubic"
         and prep["resize_size"] == 224 and prep["crop_height"] == 224
         and prep["mean"] == [0.48145466, 0.4578275, 0.40821073]
         and prep["std"] == [0.26862954, 0.26130258, 0.27577711], f"clip preprocessing {prep}")
zc.check(side["batch_dim_hint"] == {"visual.transformer": 1, "transformer": 1}, "batch_dim_hint")
zc.check(side["context_length"] == 77, "context_length")
zc.check(all(m in names for m in side["suggested_modules"]), "suggested modules")
zc.finish()
