#!/usr/bin/python3
"""check-onnx-exports.py — do plain torch.onnx.export files of every models/export.py --list model load?

For each architecture (seeded random weights, no network) and opset, exports the model exactly as a
user would, with default settings:
    torch.onnx.export(model, x, "ARCH.onnx", input_names=["input"],
                      dynamic_axes={"input": {0: "batch"}}, opset_version=OPSET)
then loads it with tv-extract (--list-modules) and extracts the net's last layer for two images,
comparing it with the eager model's output on the same pixels (max |diff| / max |ref|; the images are
written at the model's input size and read with --resize 0 --crop 0 --mean 0,0,0 --std 1,1,1, so that
both sides see pixel / 255). Results are appended to RESULTS.tsv (a rerun skips the pairs already
there) and written as a Markdown table to --table.

usage: scripts/check-onnx-exports.py --tv-extract build/tools/tv-extract [--opsets 13,17]
           [--archs resnet18,vit_b_16] [--results onnx-exports.tsv] [--table docs/onnx-exports.md]
Run it niced: a full run exports 80 models at 5 opsets (hours on 2 cores; the giant ones need
~10 GB of memory each).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
import export  # noqa: E402

TOLERANCE = 1e-4  # max |diff| / max |ref|, as the ONNX tests


def first_line(text: str, limit: int = 2000) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    line = line.replace("\t", " ").replace("|", "/")
    return line if len(line) <= limit else line[:limit] + " ..."


def write_images(folder: str, side: int) -> np.ndarray:
    """Two seeded random side x side RGB PNGs; returns them as N x 3 x H x W float32 / 255."""
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    arrays = []
    for i in range(2):
        pixels = rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"img{i}.png"))
        arrays.append(pixels.transpose(2, 0, 1).astype(np.float32) / 255.0)
    return np.stack(arrays)


def check(arch: str, opset: int, built, tv_extract: str, work: str) -> tuple:
    """(status, detail, seconds): status ok, mismatch, export-error or load-error."""
    start = time.time()
    model = built.model
    if built.entry_method != "forward":
        model = export._EntryMethod(model, built.entry_method).eval()
    side = built.preprocessing.get("crop_height") or 224
    images = os.path.join(work, "images")
    batch = write_images(images, side)
    path = os.path.join(work, f"{arch}.onnx")
    try:
        with warnings.catch_warnings():  # no torch.no_grad(): nn.MultiheadAttention's fast path
            warnings.simplefilter("ignore")  # under it has no ONNX symbolic
            torch.onnx.export(model, export.example_input(built), path, input_names=["input"],
                              dynamic_axes={"input": {0: "batch"}}, opset_version=opset)
    except Exception as e:  # noqa: BLE001 - the exporter's own failure is a result too
        return "export-error", first_line(str(e) or type(e).__name__), time.time() - start
    listed = subprocess.run([tv_extract, "--model", path, "--images", images, "--list-modules"],
                            capture_output=True, text=True)
    if listed.returncode != 0:
        return "load-error", first_line(listed.stderr), time.time() - start
    layers = [line.split("\t")[0] for line in listed.stdout.splitlines() if line.startswith("onnx_node!")]
    last = layers[-1]
    out = os.path.join(work, "out")
    ran = subprocess.run([tv_extract, "--model", path, "--images", images, "--module", last, "--out", out,
                          "--resize", "0", "--crop", "0", "--mean", "0,0,0", "--std", "1,1,1",
                          "--overwrite", "--quiet", "--threads", "2"], capture_output=True, text=True)
    if ran.returncode != 0:
        return "load-error", first_line(ran.stderr), time.time() - start
    names = open(os.path.join(out, "file_names.txt")).read().split()
    order = [int(n.split("img")[1].split(".")[0]) for n in names]
    folder = [d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d))][0]  # the escaped name
    got = np.load(os.path.join(out, folder, "features.npy"))
    with torch.no_grad():
        ref = export.first_tensor(model(torch.from_numpy(batch[order]))).numpy()
    if got.shape != ref.shape:
        return "mismatch", f"{last}: shape {got.shape} vs torch {ref.shape}", time.time() - start
    diff = float(np.abs(got - ref).max()) / max(float(np.abs(ref).max()), 1e-12)
    status = "ok" if diff <= TOLERANCE else "mismatch"
    return status, f"{len(layers)} layers, output {diff:.1e}", time.time() - start


def read_results(path: str) -> dict:
    results = {}
    if os.path.exists(path):
        for line in open(path):
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 4 and parts[0] != "arch":
                results[(parts[0], int(parts[1]))] = (parts[2], parts[3])
    return results


def summary(status: str, detail: str) -> str:
    """A table cell's text: the node, its op and OpenCV's reason for a load error."""
    node = re.search(r"node '([^']*)' \(op ([^)]*)\)", detail)
    reason = re.search(r"error: \([^)]*\) (.*?)(?: in function| \)|$)", detail)
    if status == "load-error" and node:
        text = f"`{node.group(1)}` ({node.group(2)})"
        ours = re.search(r"\(op [^)]*\) (holds [^;]*);", detail)  # refused before OpenCV reads it
        if ours:
            return f"{text}: {ours.group(1)}"
        return text + (f": {reason.group(1).strip()}" if reason else "")
    return detail.replace("tv-extract: error: ", "")


def write_table(results: dict, opsets: list, path: str) -> None:
    archs = [a for a in export.all_architectures() if any((a, o) in results for o in opsets)]
    counts = {o: sum(1 for a in archs if results.get((a, o), ("",))[0] == "ok") for o in opsets}
    ran = {o: sum(1 for a in archs if (a, o) in results) for o in opsets}
    lines = [
        "# Plain ONNX exports of the zoo's models, loaded by tv-extract",
        "",
        "Written by `scripts/check-onnx-exports.py` (seeded random weights; Debian 12: torch "
        f"{torch.__version__.split('+')[0]}, OpenCV DNN through tv-extract). Each model is exported with",
        "`torch.onnx.export(model, x, f, input_names=[\"input\"], dynamic_axes={\"input\": {0: \"batch\"}}, "
        "opset_version=N)`",
        "and nothing else; **ok** means tv-extract loaded it (the graph rewritten in memory: Identity nodes removed,",
        "Clip bounds made attributes) and the net's last",
        f"layer equals the eager model's output for two images (max |diff| / max |ref| <= {TOLERANCE:g}, shown).",
        "With random weights some outputs are nearly constant (googlenet's is about its fc bias), so there the",
        "number is a weak check. Load errors give the node OpenCV stopped at, its op and OpenCV's reason where",
        "recorded. An empty cell was not run.",
        "",
        "| opset | " + " | ".join(str(o) for o in opsets) + " |",
        "|---|" + "---|" * len(opsets),
        "| ok / run | " + " | ".join(f"{counts[o]} / {ran[o]}" for o in opsets) + " |",
        "",
        "| model | " + " | ".join(f"opset {o}" for o in opsets) + " |",
        "|---|" + "---|" * len(opsets),
    ]
    for arch in archs:
        cells = []
        for o in opsets:
            if (arch, o) not in results:
                cells.append("")
                continue
            status, detail = results[(arch, o)]
            cells.append(f"**{status}** ({detail})" if status == "ok" else f"**{status}**: {summary(status, detail)}")
        lines.append(f"| {arch} | " + " | ".join(cells) + " |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tv-extract", required=True, help="the tv-extract binary to load the files with")
    parser.add_argument("--opsets", default="13,14,15,16,17", help="comma-separated (default 13,14,15,16,17)")
    parser.add_argument("--archs", help="comma-separated architectures (default: models/export.py --list)")
    parser.add_argument("--results", default="onnx-exports.tsv", help="results, appended (default onnx-exports.tsv)")
    parser.add_argument("--table", help="write the Markdown table of all results here")
    parser.add_argument("--table-only", action="store_true", help="only write --table from --results")
    args = parser.parse_args()
    opsets = [int(o) for o in args.opsets.split(",")]
    archs = args.archs.split(",") if args.archs else export.all_architectures()
    results = read_results(args.results)
    if not args.table_only:
        if not os.path.exists(args.results):
            with open(args.results, "w") as f:
                f.write("arch\topset\tstatus\tdetail\tseconds\n")
        for arch in archs:
            todo = [o for o in opsets if (arch, o) not in results]
            if not todo:
                continue
            built = export.build(arch, "random", 0, None, None)
            for opset in todo:
                with tempfile.TemporaryDirectory(prefix="tv_onnx_check.") as work:
                    status, detail, seconds = check(arch, opset, built, args.tv_extract, work)
                results[(arch, opset)] = (status, detail)
                with open(args.results, "a") as f:
                    f.write(f"{arch}\t{opset}\t{status}\t{detail}\t{seconds:.0f}\n")
                print(f"{arch} opset {opset}: {status} ({detail}) {seconds:.0f} s", flush=True)
    if args.table:
        write_table(results, opsets, args.table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
