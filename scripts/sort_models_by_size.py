#!/usr/bin/env python3
"""sort_models_by_size.py — the models scripts/export_all.sh runs for a source, smallest first.

Counts each architecture's parameters on PyTorch's "meta" device (no memory, no weights: ~0.2 s a
model) and prints the list lines in ascending order, so that scripts/export_all.sh --models-from
FILE exports the small models first and the billion-parameter ones (minutes and ~10 GB each) last.
The lines are export_all.sh --print-list's: timm, every model; custom, the OpenCLIP architectures
(random weights, one line each) sorted, after the other custom names in their order. A model that cannot be
built here (e.g. a text tower from the Hugging Face hub, offline) comes last. --sizes writes
"LINE<TAB>PARAMETERS". Run it with the venv's python (scripts/setup-venv.sh):
    .venv/bin/python scripts/sort_models_by_size.py [--source timm|custom] > list.txt [--sizes sizes.tsv]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import timm
import torch

SCRIPTS = os.path.dirname(os.path.abspath(__file__))


def run_lines(source: str) -> list:
    """The model lines export_all.sh --source SOURCE goes through, with this python."""
    with tempfile.TemporaryDirectory() as out:
        listed = subprocess.run([os.path.join(SCRIPTS, "export_all.sh"), out, "--source", source,
                                 "--python", sys.executable, "--print-list"],
                                check=True, capture_output=True, text=True).stdout
    return [line for line in listed.splitlines() if line.strip()]


def parameters(line: str) -> int:
    """The number of parameters of the model of a list line ("NAME" for timm, "OpenCLIP --variant V"),
    built on the meta device; -1 if it cannot be built here."""
    words = line.split()
    try:
        with torch.device("meta"):
            if words[0] == "OpenCLIP":
                import open_clip
                model = open_clip.create_model(words[words.index("--variant") + 1], pretrained=None,
                                               device="meta")
            else:
                model = timm.create_model(words[0], pretrained=False)
        return sum(p.numel() for p in model.parameters())
    except Exception:  # noqa: BLE001 - sorted last; export_all.sh records the real error
        return -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["timm", "custom"], default="timm")
    parser.add_argument("--sizes", help="also write 'LINE<TAB>PARAMETERS' lines to this file")
    args = parser.parse_args()
    lines = run_lines(args.source)
    if args.source == "custom":
        kept = [line for line in lines if not line.startswith("OpenCLIP")]
        clip = [line for line in lines if line.startswith("OpenCLIP")]
    else:
        kept, clip = [], lines
    sizes = {line: parameters(line) for line in clip}
    order = kept + sorted(clip, key=lambda n: (sizes[n] < 0, sizes[n], n))
    if args.sizes:
        with open(args.sizes, "w") as f:
            f.writelines(f"{n}\t{sizes.get(n, '')}\n" for n in order)
    print("\n".join(order))
    return 0


if __name__ == "__main__":
    sys.exit(main())
