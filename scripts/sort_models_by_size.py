#!/usr/bin/env python3
"""sort_models_by_size.py — timm's models (models/export.py --list --source timm), smallest first.

Counts each architecture's parameters on PyTorch's "meta" device (no memory, no weights: ~0.2 s a
model) and prints the list lines in ascending order, each followed by nothing else, so that
scripts/export_all.sh --models-from FILE exports the small models first and the billion-parameter
ones (minutes and ~10 GB each) last. A header line "# NAME PARAMETERS" per model goes to --sizes.
Run it with the venv's python (scripts/setup-venv.sh):
    .venv/bin/python scripts/sort_models_by_size.py > /tmp/timm_by_size.txt [--sizes sizes.tsv]
"""
import argparse
import os
import sys

import timm
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
import export  # noqa: E402


def parameters(name: str) -> int:
    """The number of parameters of timm's `name`, built on the meta device; -1 if it cannot be built."""
    try:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False)
        return sum(p.numel() for p in model.parameters())
    except Exception:  # noqa: BLE001 - sorted last; export_all.sh records the real error
        return -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="also write 'NAME<TAB>PARAMETERS' lines to this file")
    args = parser.parse_args()
    names = export.list_source("timm")
    sizes = {name: parameters(name) for name in names}
    order = sorted(names, key=lambda n: (sizes[n] < 0, sizes[n], n))
    if args.sizes:
        with open(args.sizes, "w") as f:
            f.writelines(f"{n}\t{sizes[n]}\n" for n in order)
    print("\n".join(order))
    return 0


if __name__ == "__main__":
    sys.exit(main())
