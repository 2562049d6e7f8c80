#!/usr/bin/python3
"""THINGSvision itself, as a user's script runs it, for scripts/bench.sh's whole-process table.

Usage: PYTHONPATH=$(scripts/setup-thingsvision.sh DIR) thingsvision_extract.py --arch ARCH --pt MODEL.pt
           --module NAME --images DIR --out DIR [--threads N] [--batch-size B]

get_extractor(model_name=ARCH, source="torchvision", pretrained=False), the weights of MODEL.pt (the
archive tv-extract runs, so both compute with the same numbers), THINGSvision's ImageDataset,
DataLoader and extract_features, then save_features(..., "npy") into OUT/features.npy. Timed from
outside (the whole process: imports, model build, extraction, save), as `time python script.py`.
"""
import argparse

import torch
from thingsvision import get_extractor
from thingsvision.utils.data import DataLoader, ImageDataset
from thingsvision.utils.storing import save_features


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", required=True)
    parser.add_argument("--pt", required=True)
    parser.add_argument("--module", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    extractor = get_extractor(model_name=args.arch, source="torchvision", device="cpu", pretrained=False)
    extractor.model.load_state_dict(torch.jit.load(args.pt, map_location="cpu").state_dict())
    dataset = ImageDataset(root=args.images, out_path=args.out, backend=extractor.get_backend(),
                           transforms=extractor.get_transformations())
    batches = DataLoader(dataset=dataset, batch_size=args.batch_size, backend=extractor.get_backend())
    features = extractor.extract_features(batches=batches, module_name=args.module, flatten_acts=False,
                                          output_type="ndarray")
    save_features(features, out_path=args.out, file_format="npy")


if __name__ == "__main__":
    main()
