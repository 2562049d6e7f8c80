#!/usr/bin/python3
"""Decode + preprocess throughput of PIL + torchvision (THINGSvision's pipeline), images/s per thread.

Usage: /usr/bin/python3 bench/decode_python.py [IMAGE_DIR] [--seconds S]
The same images and pipelines as bench/decode_bench.cpp: jpeg = the .jpg/.jpeg files, all = also .png,
each image Image.open(f).convert("RGB") then Compose([Resize, CenterCrop, ToTensor, Normalize]).
torch runs on one thread (per-thread throughput, as the C++ numbers).
"""
import argparse
import os
import time

import torch
from PIL import Image
from torchvision import transforms as T

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
CLIP = ([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711])
PIPELINES = {
    "thingsvision": T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(*IMAGENET)]),
    "clip": T.Compose([T.Resize(224, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224), T.ToTensor(),
                       T.Normalize(*CLIP)]),
}


def files(folder, kind):
    exts = (".jpg", ".jpeg") + ((".png",) if kind == "all" else ())
    return [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.lower().endswith(exts)]


def measure(paths, transform, seconds, decode_only=False):
    """Images per second of wall time and per second of this process's CPU time."""
    done, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        for p in paths:
            with open(p, "rb") as f:
                img = Image.open(f).convert("RGB")
            if not decode_only:
                transform(img)
            done += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed, done / (time.process_time() - cpu_start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", nargs="?", default="/usr/share/doc/opencv-doc/examples/data")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for kind, preset in [("jpeg", "thingsvision"), ("jpeg", "clip"), ("all", "thingsvision")]:
        wall, cpu = measure(files(args.folder, kind), PIPELINES[preset], args.seconds)
        print(f"python {kind}_{preset}: {wall:.1f} images/s (wall), {cpu:.1f} images/s (CPU time)")
    wall, cpu = measure(files(args.folder, "jpeg"), None, args.seconds, decode_only=True)
    print(f"python decode_only (jpeg): {wall:.1f} images/s (wall), {cpu:.1f} images/s (CPU time)")


if __name__ == "__main__":
    main()
