#!/usr/bin/python3
"""THINGSvision itself, as a user's script runs it, for scripts/bench.sh's whole-process table.

Usage: PYTHONPATH=$(scripts/setup-thingsvision.sh DIR) thingsvision_extract.py --arch ARCH --pt MODEL.pt
           --module NAME --images DIR --out DIR [--threads N] [--batch-size B]

get_extractor(model_name=ARCH, source="torchvision", pretrained=False), the weights of MODEL.pt (the
archive tv-extract runs, so both compute with the same numbers), THINGSvision's ImageDataset,
DataLoader and extract_features, then save_features(..., "npy") into OUT/features.npy. Timed from
outside (the whole process: imports, model build, extraction, save), as `time python script.py`;
the script also writes OUT/phases.json, the seconds of each phase from the script's first line
(the interpreter's own start and exit are what the outside time adds).
"""
import time

_T0 = time.perf_counter()
import argparse  # noqa: E402
import json  # noqa: E402

import torch  # noqa: E402
from thingsvision import get_extractor  # noqa: E402
from thingsvision.utils.data import DataLoader, ImageDataset  # noqa: E402
from thingsvision.utils.storing import save_features  # noqa: E402

_T_IMPORTED = time.perf_counter()


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
    t_start = time.perf_counter()
    extractor = get_extractor(model_name=args.arch, source="torchvision", device="cpu", pretrained=False)
    extractor.model.load_state_dict(torch.jit.load(args.pt, map_location="cpu").state_dict())
    t_model = time.perf_counter()
    dataset = ImageDataset(root=args.images, out_path=args.out, backend=extractor.get_backend(),
                           transforms=extractor.get_transformations())
    batches = DataLoader(dataset=dataset, batch_size=args.batch_size, backend=extractor.get_backend())
    features = extractor.extract_features(batches=batches, module_name=args.module, flatten_acts=False,
                                          output_type="ndarray")
    t_extracted = time.perf_counter()
    save_features(features, out_path=args.out, file_format="npy")
    t_saved = time.perf_counter()
    phases = {"imports": _T_IMPORTED - _T0, "model": t_model - t_start, "extract": t_extracted - t_model,
              "save": t_saved - t_extracted}
    with open(f"{args.out}/phases.json", "w") as f:
        json.dump(phases, f)


if __name__ == "__main__":
    main()
