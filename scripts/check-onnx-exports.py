#!/usr/bin/python3
"""check-onnx-exports.py — do plain torch.onnx.export files of every models/export.py --list model load?

For each architecture (seeded random weights, no network) and opset, exports the model exactly as a
user would, with default settings:
    torch.onnx.export(model, x, "ARCH.onnx", input_names=["input"],
                      dynamic_axes={"input": {0: "batch"}}, opset_version=OPSET)
then loads it with tv-extract --backend B for each backend of --backend (opencv: OpenCV DNN;
onnxruntime: ONNX Runtime, builds that have it) with --list-modules and extracts the net's last layer
for two images, comparing it with the eager model's output on the same pixels (max |diff| / max |ref|;
the images are written at the model's input size and read with --resize 0 --crop 0 --mean 0,0,0
--std 1,1,1, so that both sides see pixel / 255). Each file is exported once for all backends.
Results are appended to --results, one row per platform, backend, model and opset (a rerun skips the
rows already there); --table writes this platform's sections of a Markdown file (one per backend,
between "<!-- onnx-exports: PLATFORM / BACKEND -->" markers), keeping the other platforms' sections.

usage: scripts/check-onnx-exports.py --tv-extract build/tools/tv-extract [--backend opencv,onnxruntime]
           [--opsets 13,17] [--archs resnet18,vit_b_16] [--skip-giants] [--results onnx-exports.tsv]
           [--table docs/onnx-exports.md]
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
import onnx
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
import export  # noqa: E402

TOLERANCE = 1e-4  # max |diff| / max |ref|, as the ONNX tests
BACKENDS = {"opencv": ("opencv_dnn", "OpenCV DNN", "libopencv-dev"),  # --backend: tv-extract's name,
            "onnxruntime": ("onnxruntime", "ONNX Runtime", "libonnxruntime-dev")}  # words, package
# --skip-giants: over ~100 M parameters or ~10 GFLOPs at their input size (and vit_h_14's file needs
# external data); minutes to export each and several GB of memory, on 2 shared cores.
GIANTS = ["convnext_large", "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_l", "regnet_x_32gf",
          "regnet_y_16gf", "regnet_y_32gf", "regnet_y_128gf", "swin_v2_b", "vgg19", "vgg19_bn", "vit_h_14",
          "vit_l_16", "vit_l_32"]


def platform() -> str:
    """The Debian release ("Debian 13 (trixie)"), from /etc/os-release."""
    fields = {}
    if os.path.exists("/etc/os-release"):
        for line in open("/etc/os-release"):
            key, _, value = line.strip().partition("=")
            fields[key] = value.strip('"')
    name = fields.get("NAME", "unknown").split()[0]
    version = fields.get("VERSION_ID", "?")
    codename = fields.get("VERSION_CODENAME")
    return f"{name} {version}" + (f" ({codename})" if codename else "")


def package_version(package: str) -> str:
    """The installed Debian package's upstream version ("4.10.0"), or "?"."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True,
                             text=True).stdout
    except OSError:
        return "?"
    return re.sub(r"^\d+:", "", out).split("+")[0].split("-")[0] or "?"


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


def export_file(arch: str, opset: int, built, work: str) -> tuple:
    """Exports ARCH.onnx into `work` as a user would; (path, batch, model) or (None, error, model)."""
    model = built.model
    if built.entry_method != "forward":
        model = export._EntryMethod(model, built.entry_method).eval()
    side = built.preprocessing.get("crop_height") or 224
    batch = write_images(os.path.join(work, "images"), side)
    path = os.path.join(work, f"{arch}.onnx")
    try:
        with warnings.catch_warnings():  # no torch.no_grad(): nn.MultiheadAttention's fast path
            warnings.simplefilter("ignore")  # under it has no ONNX symbolic
            torch.onnx.export(model, export.example_input(built), path, input_names=["input"],
                              dynamic_axes={"input": {0: "batch"}}, opset_version=opset)
    except Exception as e:  # noqa: BLE001 - the exporter's own failure is a result too
        return None, first_line(str(e) or type(e).__name__), model
    return path, batch, model


def check(path: str, batch: np.ndarray, model, backend: str, tv_extract: str, work: str) -> tuple:
    """(status, detail): tv-extract --backend `backend` on the exported `path`; status ok, mismatch
    or load-error."""
    images = os.path.join(work, "images")
    flag = ["--backend", BACKENDS[backend][0]]
    out = os.path.join(work, f"out.{backend}")

    def extract(module: str) -> subprocess.CompletedProcess:
        return subprocess.run([tv_extract, "--model", path, *flag, "--images", images, "--module", module, "--out",
                               out, "--resize", "0", "--crop", "0", "--mean", "0,0,0", "--std", "1,1,1",
                               "--overwrite", "--quiet", "--threads", "2"], capture_output=True, text=True)

    # The net's last layer: the node that writes the graph's output (one tv-extract run, which loads
    # the file once), else the last layer --list-modules lists.
    graph = onnx.load(path, load_external_data=False).graph
    last = next((f"onnx_node!{n.name}" for n in graph.node if graph.output[0].name in n.output), "")
    ran = extract(last) if last else None
    if ran is None or (ran.returncode != 0 and "not found in" in ran.stderr):
        listed = subprocess.run([tv_extract, "--model", path, *flag, "--images", images, "--list-modules"],
                                capture_output=True, text=True)
        if listed.returncode != 0:
            return "load-error", first_line(listed.stderr)
        last = [line.split("\t")[0] for line in listed.stdout.splitlines() if line.startswith("onnx_node!")][-1]
        ran = extract(last)
    if ran.returncode != 0:
        return "load-error", first_line(ran.stderr)
    names = open(os.path.join(out, "file_names.txt")).read().split()
    order = [int(n.split("img")[1].split(".")[0]) for n in names]
    folder = [d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d))][0]  # the escaped name
    got = np.load(os.path.join(out, folder, "features.npy"))
    with torch.no_grad():
        ref = export.first_tensor(model(torch.from_numpy(batch[order]))).numpy()
    if got.shape != ref.shape:
        return "mismatch", f"{last}: shape {got.shape} vs torch {ref.shape}"
    diff = float(np.abs(got - ref).max()) / max(float(np.abs(ref).max()), 1e-12)
    status = "ok" if diff <= TOLERANCE else "mismatch"
    return status, f"{len(graph.node)} nodes, output {diff:.1e}"


RESULTS_HEADER = "platform\tbackend\tarch\topset\tstatus\tdetail\tseconds\n"


def read_results(path: str) -> dict:
    """{(platform, backend): {(arch, opset): (status, detail)}} from a results file."""
    results = {}
    if os.path.exists(path):
        for line in open(path):
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 6 and parts[0] != "platform":
                results.setdefault((parts[0], parts[1]), {})[(parts[2], int(parts[3]))] = (parts[4], parts[5])
    return results


def summary(status: str, detail: str) -> str:
    """A table cell's text: the node, its op and OpenCV's reason for a load error."""
    node = re.search(r"node '([^']*)' \(op ([^)]*)\)", detail)
    if status == "load-error" and "ONNX Runtime" in detail:  # its own text names node and op
        return re.sub(r"^.*?with ONNX Runtime [^:]*: ", "", detail.replace("tv-extract: error: ", ""))
    reason = re.search(r"error: \([^)]*\) (.*?)(?: in function| \)|$)", detail)
    if status == "load-error" and node:
        text = f"`{node.group(1)}` ({node.group(2)})"
        ours = re.search(r"\(op [^)]*\) (holds [^;]*);", detail)  # refused before OpenCV reads it
        if ours:
            return f"{text}: {ours.group(1)}"
        # OpenCV >= 4.7 puts "in function '...'" before its reason
        why = re.sub(r"^in function '[^']*' ", "", reason.group(1).strip()) if reason else ""
        return text + (f": {why}" if why else "")
    return detail.replace("tv-extract: error: ", "")


INTRO = """# Plain ONNX exports of the zoo's models, loaded by tv-extract

Written by `scripts/check-onnx-exports.py` (seeded random weights). Each model is exported with
`torch.onnx.export(model, x, f, input_names=["input"], dynamic_axes={"input": {0: "batch"}}, opset_version=N)`
and nothing else, then loaded by tv-extract with one backend; **ok** means tv-extract loaded it and the
net's last layer equals the eager model's output for two images (max |diff| / max |ref| <= 0.0001, shown).
An empty cell was not run.

<!-- onnx-exports summary -->
<!-- end summary -->
"""


def section_marker(platform_name: str, backend: str) -> str:
    return f"<!-- onnx-exports: {platform_name} / {backend} -->"


def write_section(results: dict, opsets: list, platform_name: str, backend: str, skipped: list) -> str:
    """This platform's and backend's section of the Markdown file: counts, then a row per model."""
    archs = [a for a in export.all_architectures() if any((a, o) in results for o in opsets)]
    counts = {o: sum(1 for a in archs if results.get((a, o), ("",))[0] == "ok") for o in opsets}
    ran = {o: sum(1 for a in archs if (a, o) in results) for o in opsets}
    words, package = BACKENDS[backend][1], BACKENDS[backend][2]
    lines = [
        section_marker(platform_name, backend),
        f"## {platform_name}: {words} {package_version(package)} (torch {torch.__version__.split('+')[0]})",
        "",
        f"`--backend {BACKENDS[backend][0]}`. Load errors give the node the library stopped at, its op and its "
        "reason where recorded.",
    ]
    if skipped:
        lines.append(f"Not run (giants, `--skip-giants`: minutes and GBs each on 2 shared cores): {', '.join(skipped)}.")
    partly = {}  # models run at some opsets only, by the opsets they ran at
    for arch in archs:
        ran_at = tuple(o for o in opsets if (arch, o) in results)
        if len(ran_at) < len(opsets):
            partly.setdefault(ran_at, []).append(arch)
    for ran_at, names in partly.items():
        at = ", ".join(str(o) for o in ran_at)
        lines.append(f"Run at opset{'s' if len(ran_at) > 1 else ''} {at} only: {', '.join(names)}.")
    lines += [
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
    lines.append("<!-- end -->")
    return "\n".join(lines) + "\n"


def summary_table(text: str) -> str:
    """ok / run per opset of every section in `text` (its "## " title and "| ok / run |" row)."""
    rows, opsets = [], set()
    for part in text.split("<!-- onnx-exports: ")[1:]:
        title = re.search(r"^## (.*)$", part, re.M)
        header = re.search(r"^\| opset \| (.*) \|$", part, re.M)
        counts = re.search(r"^\| ok / run \| (.*) \|$", part, re.M)
        if title and header and counts:
            cells = dict(zip(header.group(1).split(" | "), counts.group(1).split(" | ")))
            opsets.update(cells)
            rows.append((title.group(1), cells))
    order = sorted(opsets, key=int)
    lines = ["| platform: backend (exporting torch) | " + " | ".join(f"opset {o}" for o in order) + " |",
             "|---|" + "---|" * len(order)]
    lines += [f"| {title} | " + " | ".join(cells.get(o, "") for o in order) + " |" for title, cells in rows]
    return "\n".join(lines)


def write_table(path: str, sections: dict) -> None:
    """Replaces (or appends) each section (marker → text) of the Markdown file `path`, keeping the rest,
    then the summary of all sections (ok / run) between its markers."""
    text = open(path).read() if os.path.exists(path) else INTRO
    for marker, section in sections.items():
        at = text.find(marker)
        if at < 0:
            text = text.rstrip("\n") + "\n\n" + section
        else:
            end = text.index("<!-- end -->", at) + len("<!-- end -->\n")
            text = text[:at] + section + text[end:]
    begin, end = "<!-- onnx-exports summary -->\n", "<!-- end summary -->"
    if begin in text and end in text:
        text = text[:text.index(begin) + len(begin)] + summary_table(text) + "\n" + text[text.index(end):]
    with open(path, "w") as f:
        f.write(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tv-extract", required=True, help="the tv-extract binary to load the files with")
    parser.add_argument("--backend", default="opencv",
                        help="comma-separated: opencv (OpenCV DNN), onnxruntime (default opencv)")
    parser.add_argument("--opsets", default="13,14,15,16,17", help="comma-separated (default 13,14,15,16,17)")
    parser.add_argument("--archs", help="comma-separated architectures (default: models/export.py --list)")
    parser.add_argument("--skip-giants", action="store_true", help="leave out " + ", ".join(GIANTS))
    parser.add_argument("--results", default="onnx-exports.tsv", help="results, appended (default onnx-exports.tsv)")
    parser.add_argument("--table", help="write this platform's sections of this Markdown file")
    parser.add_argument("--table-only", action="store_true", help="only write --table from --results")
    args = parser.parse_args()
    opsets = [int(o) for o in args.opsets.split(",")]
    backends = args.backend.split(",")
    for backend in backends:
        if backend not in BACKENDS:
            parser.error(f"--backend: unknown backend '{backend}' (opencv, onnxruntime)")
    archs = args.archs.split(",") if args.archs else export.all_architectures()
    skipped = [a for a in archs if args.skip_giants and a in GIANTS]
    archs = [a for a in archs if a not in skipped]
    here = platform()
    all_results = read_results(args.results)
    results = {b: all_results.setdefault((here, b), {}) for b in backends}
    if not args.table_only:
        if not os.path.exists(args.results):
            with open(args.results, "w") as f:
                f.write(RESULTS_HEADER)
        for arch in archs:
            todo = [o for o in opsets if any((arch, o) not in results[b] for b in backends)]
            if not todo:
                continue
            built = export.build(arch, "random", 0, None, None)
            for opset in todo:
                with tempfile.TemporaryDirectory(prefix="tv_onnx_check.") as work:
                    start = time.time()
                    path, batch, model = export_file(arch, opset, built, work)
                    for backend in [b for b in backends if (arch, opset) not in results[b]]:
                        if path is None:
                            status, detail = "export-error", batch
                        else:
                            status, detail = check(path, batch, model, backend, args.tv_extract, work)
                        seconds = time.time() - start
                        start = time.time()
                        results[backend][(arch, opset)] = (status, detail)
                        with open(args.results, "a") as f:
                            f.write(f"{here}\t{backend}\t{arch}\t{opset}\t{status}\t{detail}\t{seconds:.0f}\n")
                        print(f"{arch} opset {opset} {backend}: {status} ({detail}) {seconds:.0f} s", flush=True)
    if args.table:
        write_table(args.table, {section_marker(here, b): write_section(results[b], opsets, here, b, skipped)
                                 for b in backends})
    return 0


if __name__ == "__main__":
    sys.exit(main())
