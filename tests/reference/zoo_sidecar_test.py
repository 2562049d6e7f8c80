"""The JSON sidecar (schema in models/README.md): every field of a random export, reproducible
bytes for the same seed, and preprocessing taken from the weights' own transforms()."""
import hashlib
import json
import os
import zipfile

import torch
import torchvision

import zoo_common as zc

out = zc.work_dir("sidecar")


def load(path):
    with open(path) as f:
        return json.load(f)


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# --- random weights: the THINGSvision default preprocessing, provenance fields
for d in ("a", "b"):
    p = zc.run_export("--arch", "squeezenet1_1", "--weights", "random", "--seed", "3",
                      "--out", f"{out}/{d}")
    zc.check(p.returncode == 0, f"export failed: {p.stderr}")
s = load(f"{out}/a/squeezenet1_1.json")
expected = {
    "schema_version": 1, "architecture": "squeezenet1_1", "weights": "random",
    "weights_tag": None, "seed": 3, "export_method": "script", "entry_method": "forward",
    "torch_version": torch.__version__.split("+")[0],
    "torchvision_version": torchvision.__version__.split("+")[0],
    "batch_dim_hint": None, "token_mode": None,
}
for key, value in expected.items():
    zc.check(s.get(key) == value, f"sidecar {key}: {s.get(key)!r} != {value!r}")
zc.check(s["sha256"] == sha256(f"{out}/a/squeezenet1_1.pt"), "sha256 is not the .pt's")
zc.check(sha256(f"{out}/a/squeezenet1_1.pt") == sha256(f"{out}/b/squeezenet1_1.pt"),
         "the same export twice gives different bytes")
prep = s["preprocessing"]
want = {"preset": "thingsvision", "resize_mode": "shorter_side", "resize_size": 256,
        "interpolation": "bilinear", "crop_height": 224, "crop_width": 224,
        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
        "channel_order": "rgb", "scale": "0-1"}
for key, value in want.items():
    zc.check(prep.get(key) == value, f"preprocessing {key}: {prep.get(key)!r} != {value!r}")
with zipfile.ZipFile(f"{out}/a/squeezenet1_1.pt") as z:
    trees = [n for n in z.namelist() if n.endswith("extra/module_tree.txt")]
    zc.check(len(trees) == 1, "module_tree.txt not in the archive")
    torch.manual_seed(3)
    zc.check(z.read(trees[0]).decode() == repr(torchvision.models.squeezenet1_1().eval()),
             "module_tree.txt is not the eager repr")
p = zc.run_export("--arch", "squeezenet1_1", "--weights", "random", "--seed", "4",
                  "--out", f"{out}/c")
zc.check(sha256(f"{out}/c/squeezenet1_1.pt") != sha256(f"{out}/a/squeezenet1_1.pt"),
         "another seed gives the same weights")

# --- state dicts: preprocessing of the tagged (default: DEFAULT) torchvision weights
cases = [
    # arch, tag, resize, crop, interpolation (the torchvision 0.14 documentation's values)
    ("regnet_x_400mf", None, 232, 224, "bilinear", "IMAGENET1K_V2"),
    ("regnet_x_400mf", "IMAGENET1K_V1", 256, 224, "bilinear", "IMAGENET1K_V1"),
    ("efficientnet_b0", None, 256, 224, "bicubic", "IMAGENET1K_V1"),
]
for arch, tag, resize, crop, interp, resolved in cases:
    torch.manual_seed(0)
    sd_file = f"{out}/{arch}_weights.pth"
    torch.save(torchvision.models.get_model(arch).state_dict(), sd_file)
    args = ["--arch", arch, "--state-dict", sd_file, "--out", f"{out}/sd"]
    if tag:
        args += ["--weights-tag", tag]
    p = zc.run_export(*args)
    zc.check(p.returncode == 0, f"{arch} --state-dict failed: {p.stderr}")
    s = load(f"{out}/sd/{arch}.json")
    t = torchvision.models.get_model_weights(arch)[resolved].transforms()
    pr = s["preprocessing"]
    label = f"{arch} tag {tag}"
    zc.check(s["weights"] == "state_dict" and s["weights_tag"] == resolved,
             f"{label}: weights {s['weights']} / {s['weights_tag']}")
    zc.check(pr["resize_size"] == resize == t.resize_size[0], f"{label}: resize {pr['resize_size']}")
    zc.check(pr["crop_height"] == crop == t.crop_size[0], f"{label}: crop {pr['crop_height']}")
    zc.check(pr["interpolation"] == interp == t.interpolation.value,
             f"{label}: interpolation {pr['interpolation']}")
    zc.check(pr["mean"] == list(t.mean) and pr["std"] == list(t.std), f"{label}: mean/std")
    zc.check(s["state_dict_sha256"] == sha256(sd_file), f"{label}: state_dict_sha256")
    os.remove(sd_file)

# --- resnet50 and SWAG ViTs (checked without building the 25M-632M-parameter models)
import export  # noqa: E402

for arch, tag, resize, crop, interp in [("resnet50", None, 232, 224, "bilinear"),
                                        ("vit_b_16", "IMAGENET1K_SWAG_E2E_V1", 384, 384, "bicubic"),
                                        ("vit_h_14", None, 518, 518, "bicubic")]:
    pr = export.weights_preprocessing(export.resolve_weights(arch, tag))
    zc.check(pr["resize_size"] == resize and pr["crop_height"] == crop
             and pr["interpolation"] == interp, f"{arch} {tag}: {pr}")

# --- a wrong tag is an error listing the valid ones
p = zc.run_export("--arch", "resnet50", "--state-dict", "/nonexistent.pth",
                  "--weights-tag", "IMAGENET1K_V9", "--out", f"{out}/x")
zc.check(p.returncode == 1 and "IMAGENET1K_V2" in p.stderr and "IMAGENET1K_V9" in p.stderr,
         f"wrong tag: rc {p.returncode}, {p.stderr}")
zc.finish()
