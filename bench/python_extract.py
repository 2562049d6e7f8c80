#!/usr/bin/python3
"""THINGSvision-style extraction in Python, for comparison with tv-extract (bench/, not a test).

Same weights (the state dict of the TorchScript file loaded into the eager torchvision model), same
images, same preprocessing (PIL convert("RGB"), Resize(256), CenterCrop(224), ToTensor, Normalize),
a forward hook with clone() on the module, the full forward pass per batch, features concatenated
in memory (moved to the CPU, as THINGSvision does). Model load is not timed. --device cuda runs the
model on the GPU. Prints one JSON line: images, seconds, images_per_second, forward_seconds.
"""
import argparse
import json
import os
import time

import torch
import torchvision
from PIL import Image
from torchvision import transforms as T


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--pt", required=True, help="TorchScript file whose weights to use")
    parser.add_argument("--module", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--out", help="write the features as .npy here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model = getattr(torchvision.models, args.arch)()
    model.load_state_dict(torch.jit.load(args.pt, map_location="cpu").state_dict())
    model.eval().to(args.device)
    store = {}
    module = dict(model.named_modules())[args.module]

    def hook(_module, _inputs, output):
        out = output[0] if isinstance(output, tuple) else output
        store["act"] = out.clone().detach()

    module.register_forward_hook(hook)
    preprocess = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                            T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    extensions = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
    names = sorted(f for f in os.listdir(args.images) if f.lower().endswith(extensions))

    start = time.perf_counter()
    forward_seconds = 0.0
    chunks = []
    with torch.no_grad():
        for first in range(0, len(names), args.batch_size):
            batch = torch.stack([
                preprocess(Image.open(os.path.join(args.images, n)).convert("RGB"))
                for n in names[first:first + args.batch_size]])
            t0 = time.perf_counter()
            model(batch.to(args.device))
            if args.device != "cpu":
                torch.cuda.synchronize()
            forward_seconds += time.perf_counter() - t0
            chunks.append(store["act"].flatten(1).cpu())
    features = torch.cat(chunks).numpy()
    seconds = time.perf_counter() - start
    if args.out:
        import numpy as np
        np.save(args.out, features)
    print(json.dumps({"images": len(names), "seconds": seconds,
                      "images_per_second": len(names) / seconds,
                      "forward_seconds": forward_seconds, "threads": args.threads,
                      "device": args.device, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
