#!/usr/bin/python3
"""Independent reference for tv-extract: THINGSvision's extraction rules in plain PyTorch.

  extraction_reference.py export DIR
      writes DIR/resnet18.pt (scripted, seeded random weights, module_tree.txt inside) + DIR/resnet18.json,
      and DIR/tinyvit.pt (a ViT-shaped toy whose `norm` outputs (N, 50, 16), no sidecar)
  extraction_reference.py features --model PT --images DIR --modules a,b --out REF [--flatten]
      THINGSvision's dataset order and file_names.txt, torchvision transforms on PIL images
      (Resize(256) + CenterCrop(224) + ToTensor + Normalize(ImageNet)), forward hooks storing
      output.clone() (last call wins) on the eager model holding the TorchScript file's weights;
      writes REF/file_names.txt and REF/<module>.npy
  extraction_reference.py compare REF OUT --modules a,b [--format npy|hdf5]
      per image: Pearson r >= 0.99999 and max|got - ref| / max|ref| <= 1e-4 (--tolerance);
      file_names.txt identical
  extraction_reference.py export-torchvision --arch A --mode script|trace --out FILE [--seed S]
      torchvision A with seeded random weights (batch-norm statistics randomised), saved by plain
      torch.jit.save of the running torch (a user's file: no sidecar, no extra files); `features
      --arch A` then computes its forward-hook reference
  extraction_reference.py tokens --model TINYVIT.pt --images DIR --out REF
      THINGSvision's token_extraction (cls, avg without CLS, cls+avg) of the toy ViT's `norm` output
  extraction_reference.py projection DIR
      writes DIR/projection_{x,y}.npy: rows and their seeded Rademacher projection (K 20, seed 12345)
  extraction_reference.py badcorpus DIR
      writes the bad-input corpus (zero bytes, truncated JPEG, text named .png, 3.6-gigapixel PNG
      header, corrupted PNG data, broken symlink) beside good copies of example images
Needs Debian's python3-torch, python3-torchvision, python3-pil, python3-numpy, python3-h5py.
"""
import argparse
import json
import os
import re
import shutil
import struct
import sys
import zlib

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms

# THINGSvision's extension pattern (utils/data/dataset.py; the dot is unescaped there too).
EXTENSIONS = re.compile(r"(.eps|.jpg|.JPG|.jpeg|.JPEG|.png|.PNG|.tif|.tiff)$")


def export(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    scripted = torch.jit.script(model)
    path = os.path.join(out_dir, "resnet18.pt")
    torch.jit.save(scripted, path, _extra_files={"module_tree.txt": repr(model)})
    import hashlib
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    sidecar = {
        "schema_version": 1, "architecture": "resnet18", "weights": "random", "weights_tag": None,
        "seed": 0, "torch_version": torch.__version__, "torchvision_version": torchvision.__version__,
        "sha256": sha, "export_method": "script", "entry_method": "forward",
        "preprocessing": {"preset": "thingsvision", "resize_mode": "shorter_side", "resize_size": 256,
                          "interpolation": "bilinear", "crop_height": 224, "crop_width": 224,
                          "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                          "channel_order": "rgb", "scale": "0-1"},
        "suggested_modules": ["layer4", "avgpool"], "batch_dim_hint": None, "token_mode": None,
    }
    with open(os.path.join(out_dir, "resnet18.json"), "w") as f:
        json.dump(sidecar, f, indent=2)
    export_tinyvit(out_dir)


class TinyViT(torch.nn.Module):
    """A ViT-shaped toy: 32x32 patches → 49 tokens + CLS, dim 16; `norm` outputs (N, 50, 16)."""

    def __init__(self):
        super().__init__()
        self.patch = torch.nn.Conv2d(3, 16, 32, 32)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, 16))
        self.blocks = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.GELU())
        self.norm = torch.nn.LayerNorm(16)
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def export_tinyvit(out_dir):
    torch.manual_seed(1)
    model = TinyViT().eval()
    torch.jit.save(torch.jit.script(model), os.path.join(out_dir, "tinyvit.pt"),
                   _extra_files={"module_tree.txt": repr(model)})


def tokens(args):
    """THINGSvision's token_extraction on `norm` (utils: act[:,0,:], act[:,1:,:].mean(1), cat)."""
    model = TinyViT()
    model.load_state_dict(torch.jit.load(args.model).state_dict())
    model.eval()
    acts = []
    model.norm.register_forward_hook(lambda _m, _i, out: acts.append(out.clone().detach()))
    transform = transforms.Compose([
        transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    paths, _ = thingsvision_files(args.images)
    with torch.no_grad():
        model(torch.stack([transform(Image.open(p).convert("RGB")) for p in paths]))
    act = acts[-1]
    cls, avg = act[:, 0, :].clone(), act[:, 1:, :].mean(1)
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "cls.npy"), cls.numpy())
    np.save(os.path.join(args.out, "avg.npy"), avg.numpy())
    np.save(os.path.join(args.out, "cls+avg.npy"), torch.cat([cls, avg], dim=1).numpy())


def thingsvision_files(root):
    """(paths, file_names.txt lines) in THINGSvision's order (utils/data/dataset.py, v2.7.0)."""
    entries = sorted(os.scandir(root), key=lambda e: e.name)
    if any(e.is_dir() for e in entries):
        paths, lines = [], []
        for cls in sorted(e.name for e in entries if e.is_dir()):
            for dirpath, _, files in sorted(os.walk(os.path.join(root, cls), followlinks=True)):
                for name in sorted(files):
                    if EXTENSIONS.search(name):
                        paths.append(os.path.join(dirpath, name))
                        lines.append(os.path.join(dirpath, name))
        return paths, lines
    names = sorted(e.name for e in entries if e.is_file() and EXTENSIONS.search(e.name))
    return [os.path.join(root, n) for n in names], names


def export_torchvision(args):
    """Seeded random weights, saved by plain torch.jit.script/trace + torch.jit.save (a user's file:
    no extra files, no sidecar) with the running torch."""
    torch.manual_seed(args.seed)
    model = getattr(torchvision.models, args.arch)(weights=None).eval()
    with torch.no_grad():  # batch-norm statistics away from 0/1, so that folding them is checked
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    if args.mode == "script":
        saved = torch.jit.script(model)
    else:
        saved = torch.jit.trace(model, torch.rand(1, 3, 224, 224), check_trace=False)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.jit.save(saved, args.out)


def features(args):
    scripted = torch.jit.load(args.model)
    model = getattr(torchvision.models, args.arch)(weights=None)
    model.load_state_dict(scripted.state_dict())
    model.eval()
    modules = args.modules.split(",")
    activations = {}
    named = dict(model.named_modules())
    for name in modules:
        def hook(_module, _inputs, output, name=name):
            act = output[0] if isinstance(output, tuple) else output
            activations[name] = act.clone().detach()
        named[name].register_forward_hook(hook)
    transform = transforms.Compose([
        transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    paths, lines = thingsvision_files(args.images)
    if args.file_names:
        lines = [l.rstrip("\n") for l in open(args.file_names)]
        paths = [os.path.join(args.images, l) for l in lines]
    collected = {m: [] for m in modules}
    with torch.no_grad():
        for start in range(0, len(paths), args.batch_size):
            batch = torch.stack([transform(Image.open(p).convert("RGB"))
                                 for p in paths[start:start + args.batch_size]])
            model(batch)
            for m in modules:
                act = activations[m]
                if args.flatten and act.dim() > 2:
                    act = act.view(act.size(0), -1)
                collected[m].append(act.cpu())
    os.makedirs(args.out, exist_ok=True)
    for m in modules:
        np.save(os.path.join(args.out, m + ".npy"), torch.cat(collected[m]).numpy())
    with open(os.path.join(args.out, "file_names.txt"), "w") as f:
        f.writelines(l + "\n" for l in lines)


def read_output(out_dir, module, fmt):
    directory = os.path.join(out_dir, module)
    if fmt == "npy":
        return np.load(os.path.join(directory, "features.npy"))
    if fmt == "hdf5":
        import h5py
        with h5py.File(os.path.join(directory, "features.hdf5"), "r") as f:
            return f["features"][()]
    raise SystemExit("unsupported format " + fmt)


def compare(args):
    ok = True
    ref_names = open(os.path.join(args.ref, "file_names.txt")).read()
    got_names = open(os.path.join(args.out, "file_names.txt")).read()
    if ref_names != got_names:
        print("file_names.txt differs:\nreference:\n%s\ngot:\n%s" % (ref_names, got_names))
        ok = False
    for m in args.modules.split(","):
        ref = np.load(os.path.join(args.ref, m + ".npy")).astype(np.float64)
        got = read_output(args.out, m, args.format).astype(np.float64)
        if ref.shape != got.shape:
            print("%s: shape %s, reference %s" % (m, got.shape, ref.shape))
            ok = False
            continue
        worst_r, worst_rel = 1.0, 0.0
        for i in range(ref.shape[0]):
            r_i, g_i = ref[i].ravel(), got[i].ravel()
            r = np.corrcoef(r_i, g_i)[0, 1] if r_i.std() > 0 else (1.0 if np.array_equal(r_i, g_i) else 0.0)
            rel = np.abs(g_i - r_i).max() / max(np.abs(r_i).max(), 1e-30)
            worst_r, worst_rel = min(worst_r, r), max(worst_rel, rel)
        good = worst_r >= 0.99999 and worst_rel <= args.tolerance
        print("%s: %d images, shape %s, min r = %.8f, max rel err = %.3g %s"
              % (m, ref.shape[0], got.shape, worst_r, worst_rel, "ok" if good else "FAIL"))
        ok = ok and good
    sys.exit(0 if ok else 1)


def badcorpus(args):
    out = args.dir
    os.makedirs(out, exist_ok=True)
    good = args.good.split(",")
    for path in good:
        shutil.copy(path, os.path.join(out, os.path.basename(path)))
    open(os.path.join(out, "b_zero.jpg"), "wb").close()
    data = open(good[0], "rb").read()
    with open(os.path.join(out, "c_truncated.jpg"), "wb") as f:
        f.write(data[:len(data) // 3])
    with open(os.path.join(out, "d_text.png"), "w") as f:
        f.write("this is not an image\n")

    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))
    signature = b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(out, "e_bomb.png"), "wb") as f:  # 60000 x 60000 = 3.6 gigapixels
        f.write(signature + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b""))
    raw = b"".join(b"\x00" + bytes([x % 256, (x * 3) % 256, 7] * 32) for x in range(32))
    idat = bytearray(zlib.compress(raw))
    for i in range(2, len(idat) - 4):
        idat[i] ^= 0x5A
    with open(os.path.join(out, "f_corrupt.png"), "wb") as f:
        f.write(signature + chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", bytes(idat)) + chunk(b"IEND", b""))
    os.symlink(os.path.join(out, "does_not_exist.jpg"), os.path.join(out, "g_broken_link.jpg"))


def splitmix64(x):
    mask = (1 << 64) - 1
    x = (x + 0x9E3779B97F4A7C15) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return x ^ (x >> 31)


def projection(out_dir):
    """Random-projection reference: R[d][k] = +-1/sqrt(K), sign = bit (d*K+k) % 64 of
    splitmix64(seed + (d*K+k) // 64) (as documented in extraction.hpp), in float64."""
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 50)).astype(np.float32)
    k, seed = 20, 12345
    signs = np.empty((50, k))
    for d in range(50):
        for j in range(k):
            bit = d * k + j
            signs[d, j] = -1.0 if (splitmix64(seed + bit // 64) >> (bit % 64)) & 1 else 1.0
    y = x.astype(np.float64) @ signs / np.sqrt(k)
    np.save(os.path.join(out_dir, "projection_x.npy"), x)
    np.save(os.path.join(out_dir, "projection_y.npy"), y)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export")
    p.add_argument("dir")
    p = sub.add_parser("export-torchvision")
    p.add_argument("--arch", required=True)
    p.add_argument("--mode", choices=["script", "trace"], required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p = sub.add_parser("features")
    p.add_argument("--model", required=True)
    p.add_argument("--arch", default="resnet18", help="torchvision architecture of the eager model")
    p.add_argument("--images", required=True)
    p.add_argument("--modules", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--flatten", action="store_true")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--file-names")
    p = sub.add_parser("compare")
    p.add_argument("ref")
    p.add_argument("out")
    p.add_argument("--modules", required=True)
    p.add_argument("--format", default="npy")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max|got - ref| / max|ref| per image")
    p = sub.add_parser("tokens")
    p.add_argument("--model", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("projection")
    p.add_argument("dir")
    p = sub.add_parser("badcorpus")
    p.add_argument("dir")
    p.add_argument("--good", required=True)
    args = parser.parse_args()
    if args.command == "export":
        export(args.dir)
    elif args.command == "export-torchvision":
        export_torchvision(args)
    elif args.command == "features":
        features(args)
    elif args.command == "compare":
        compare(args)
    elif args.command == "tokens":
        tokens(args)
    elif args.command == "projection":
        projection(args.dir)
    else:
        badcorpus(args)


if __name__ == "__main__":
    main()
