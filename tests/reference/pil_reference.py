#!/usr/bin/python3
"""Reference decodes and preprocessed tensors from this platform's PIL + torchvision (Debian 12: PIL 9.4 +
torchvision 0.14; Debian 13: PIL 11 + torchvision 0.21; a venv: PyPI's), issue #3.

Usage: pil_reference.py OUT_DIR IMAGE_DIR...
For every image PIL can open in the IMAGE_DIRs (sorted, non-recursive) writes into OUT_DIR:
  <i>.rgb               Image.open(f).convert("RGB") bytes (H×W×3)
  <i>.<pipeline>.u8     the uint8 image after Resize + CenterCrop (H×W×3)
  <i>.<pipeline>.f32    the float32 tensor after ToTensor + Normalize (C×H×W), some pipelines
  <i>.exif.rgb          ImageOps.exif_transpose(image).convert("RGB") when the image has an orientation
and OUT_DIR/index.json describing them. Every data file is zlib-compressed raw bytes. Files PIL cannot open are listed with PIL's error.
A folder that does not exist is an error (the opencv-doc corpus must be installed).
"""
import hashlib
import io
import json
import os
import struct
import sys
import warnings
import zlib

import numpy as np
import torch
import torchvision
from PIL import Image, ImageOps
from torchvision import transforms as T

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
CLIP = ([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711])
BIL = T.InterpolationMode.BILINEAR
BIC = T.InterpolationMode.BICUBIC

# name: (preset for the C++ side or None, resize, crop, mean/std, write float tensors for: all|generated)
PIPELINES = {
    "thingsvision": dict(preset="thingsvision", resize_mode="shorter_side", resize=[256], interpolation="bilinear",
                         crop=[224, 224], norm=IMAGENET, tensors="all"),
    "clip": dict(preset="clip", resize_mode="shorter_side", resize=[224], interpolation="bicubic",
                 crop=[224, 224], norm=CLIP, tensors="all"),
    "net2brain": dict(preset="net2brain", resize_mode="fixed", resize=[256, 256], interpolation="bilinear",
                      crop=[224, 224], norm=IMAGENET, tensors="generated"),
    "brainscore": dict(preset="brainscore", resize_mode="fixed", resize=[224, 224], interpolation="bilinear",
                       crop=[0, 0], norm=IMAGENET, tensors="generated"),
    # Not presets: padding crops, fixed up/down-scaling with bicubic, no resize.
    "pad_crop": dict(preset=None, resize_mode="none", resize=[], interpolation="bilinear", crop=[301, 257],
                     norm=IMAGENET, tensors="generated", only="generated"),
    "fixed_bicubic": dict(preset=None, resize_mode="fixed", resize=[317, 129], interpolation="bicubic",
                          crop=[0, 0], norm=CLIP, tensors="generated", only="generated"),
    "short_bicubic_pad": dict(preset=None, resize_mode="shorter_side", resize=[96], interpolation="bicubic",
                              crop=[160, 97], norm=IMAGENET, tensors="generated", only="generated"),
}


def save(array, path):
    """Writes the array's bytes zlib-compressed (level 1); the C++ test inflates them."""
    with open(path, "wb") as f:
        f.write(zlib.compress(np.ascontiguousarray(array).tobytes(), 1))


def build(p, with_tensor):
    steps = []
    if p["resize_mode"] != "none":
        size = p["resize"][0] if p["resize_mode"] == "shorter_side" else tuple(p["resize"])
        steps.append(T.Resize(size, interpolation=BIL if p["interpolation"] == "bilinear" else BIC))
    if p["crop"][0] > 0:
        steps.append(T.CenterCrop(tuple(p["crop"])))
    if with_tensor:
        steps += [T.ToTensor(), T.Normalize(*p["norm"])]
    return T.Compose(steps)


def fingerprint(dirs):
    h = hashlib.sha256()
    for script in (__file__, os.path.join(os.path.dirname(os.path.abspath(__file__)), "make_test_images.py")):
        with open(script, "rb") as f:
            h.update(f.read())
    for d in dirs:
        for name in sorted(os.listdir(d)):
            st = os.stat(os.path.join(d, name))
            h.update(f"{d}/{name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def black_missing_entries(im, rgb):
    """`rgb` with the pixels whose palette index lies past the PNG's PLTE set to black (Pillow >= 10)."""
    entries = len(im.getpalette(rawmode="RGB") or []) // 3
    indices = np.asarray(im)
    if entries >= 256 or not (indices >= entries).any():
        return rgb
    array = np.array(rgb)
    array[indices >= entries] = 0
    return Image.fromarray(array, "RGB")


def pil_chooses_pass_order():
    """True where this Pillow may resample vertically first (Pillow 13, PR #9549: when the height
    shrinks much more than the width); Pillow <= 12 (Debian 12 and 13) always runs the horizontal
    pass first, and so does the resampler under test. Measured on a 7x3000 image -> 224x224."""
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (3000, 7, 3), dtype=np.uint8))
    direct = np.asarray(im.resize((224, 224), Image.BILINEAR))
    horizontal_first = np.asarray(im.resize((224, 3000), Image.BILINEAR).resize((224, 224), Image.BILINEAR))
    return not np.array_equal(direct, horizontal_first)


def pin_horizontal_first(counter):
    """Makes Image.resize run the horizontal pass first, as Pillow <= 12 does (two one-axis resizes
    give exactly the two passes); `counter` counts the resizes whose pixels change by it."""
    original = Image.Image.resize

    def resize(self, size, resample=None, box=None, reducing_gap=None):
        size = tuple(size)
        if (box is not None or reducing_gap is not None or self.mode not in ("RGB", "L")
                or size[0] == self.size[0] or size[1] == self.size[1]):
            return original(self, size, resample, box, reducing_gap)
        two_pass = original(original(self, (size[0], self.size[1]), resample), size, resample)
        if np.asarray(two_pass).tobytes() != np.asarray(original(self, size, resample)).tobytes():
            counter["changed"] += 1
        counter["resizes"] += 1
        return two_pass
    Image.Image.resize = resize


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pil_greys_missing_palette_entries():
    """True where this PIL shows the entries a short PNG palette lacks as the grey ramp (i, i, i), as
    Pillow 9 (Debian 12) did; Pillow >= 10 (PyPI's, Debian 13's) shows them black, and so does the
    decoder under test. Measured on a 1x8 PNG with a 4-entry palette, not read from a version."""
    header = struct.pack(">IIBBBBB", 8, 1, 8, 3, 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"PLTE", bytes(range(12)))
           + png_chunk(b"IDAT", zlib.compress(b"\x00" + bytes(range(8)))) + png_chunk(b"IEND", b""))
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return bool(rgb[0, 7, 0] == 7)


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: pil_reference.py OUT_DIR IMAGE_DIR...")
    out, dirs = sys.argv[1], sys.argv[2:]
    for d in dirs:
        if not os.path.isdir(d):
            sys.exit(f"pil_reference.py: image folder '{d}' does not exist "
                     "(install Debian's opencv-doc package for /usr/share/doc/opencv-doc/examples/data)")
    os.makedirs(out, exist_ok=True)
    index_path = os.path.join(out, "index.json")
    fp = fingerprint(dirs)
    if os.path.exists(index_path):
        with open(index_path) as f:
            if json.load(f).get("fingerprint") == fp:
                print("pil_reference.py: references are up to date")
                return
    torch.set_num_threads(1)
    greys_missing = pil_greys_missing_palette_entries()
    if greys_missing:
        print("pil_reference.py: this PIL shows missing palette entries grey (Pillow 9); references use "
              "Pillow >= 10's black for them")
    pass_order = {"resizes": 0, "changed": 0}
    adaptive_pass_order = pil_chooses_pass_order()
    if adaptive_pass_order:
        pin_horizontal_first(pass_order)
    pipes = {name: dict(p, transform_u8=build(p, False), transform=build(p, True)) for name, p in PIPELINES.items()}
    images, unreadable = [], []
    count = 0
    for d in dirs:
        generated = os.path.basename(os.path.normpath(d)) == "generated"
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if not os.path.isfile(path):
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    with open(path, "rb") as f:
                        im = Image.open(f)
                        fmt, mode = im.format, im.mode
                        rgb = im.convert("RGB")
                        if greys_missing and mode == "P" and fmt == "PNG":
                            rgb = black_missing_entries(im, rgb)
                        exif_rgb = None
                        if im.getexif().get(0x0112, 1) != 1:
                            exif_rgb = ImageOps.exif_transpose(im).convert("RGB")
            except Exception as e:  # noqa: BLE001 - recorded, the C++ side must fail too
                unreadable.append({"path": path, "pil_error": f"{type(e).__name__}: {e}"})
                continue
            key = str(count)
            count += 1
            entry = {"path": path, "format": fmt, "mode": mode, "width": rgb.width, "height": rgb.height,
                     "rgb": key + ".rgb", "generated": generated, "pipelines": {}}
            save(np.asarray(rgb, dtype=np.uint8), os.path.join(out, key + ".rgb"))
            if exif_rgb is not None:
                entry["exif"] = {"rgb": key + ".exif.rgb", "width": exif_rgb.width, "height": exif_rgb.height}
                save(np.asarray(exif_rgb, dtype=np.uint8), os.path.join(out, key + ".exif.rgb"))
            for pname, p in pipes.items():
                if p.get("only") == "generated" and not generated:
                    continue
                u8 = np.asarray(p["transform_u8"](rgb), dtype=np.uint8)
                rec = {"height": int(u8.shape[0]), "width": int(u8.shape[1]), "u8": f"{key}.{pname}.u8"}
                save(u8, os.path.join(out, rec["u8"]))
                if p["tensors"] == "all" or generated:
                    t = p["transform"](rgb)
                    assert t.dtype == torch.float32 and tuple(t.shape) == (3, u8.shape[0], u8.shape[1])
                    rec["f32"] = f"{key}.{pname}.f32"
                    save(t.numpy(), os.path.join(out, rec["f32"]))
                entry["pipelines"][pname] = rec
            images.append(entry)
    pipelines = {name: {k: v for k, v in p.items() if k in ("preset", "resize_mode", "resize", "interpolation",
                                                                "crop", "norm")}
                 for name, p in PIPELINES.items()}
    index = {"fingerprint": fp, "pil_version": Image.__version__ if hasattr(Image, "__version__") else "",
             "torchvision_version": torchvision.__version__, "pipelines": pipelines, "images": images,
             "unreadable": unreadable,
             "pillow_pass_order": {"pinned_horizontal_first": adaptive_pass_order, **pass_order}}
    tmp = index_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(index, f, indent=1)
    os.replace(tmp, index_path)
    print(f"pil_reference.py: {len(images)} images, {len(unreadable)} unreadable, written to {out}")
    if pass_order["resizes"]:
        print(f"pil_reference.py: this Pillow ({Image.__version__}) may resample vertically first; references "
              f"use Pillow <= 12's horizontal-first order, which changed {pass_order['changed']} of "
              f"{pass_order['resizes']} two-axis resizes")


if __name__ == "__main__":
    main()
