#!/usr/bin/python3
"""Renders the tables of bench/RESULTS.md that scripts/bench.sh measures as tab-separated records,
with the ratios, the issue #9 goals and the "Reading" remarks computed here (never by hand).

Usage: report.py extraction FILE.tsv | threads FILE.tsv | rss FILE.tsv
  extraction: arch module variant optimize images e2e_seconds timing_source graph forward_seconds
              python_images python_seconds warmup_seconds batches   (one line per tv-extract run;
              the last two: forward_bench's untimed warm-up batch and its number of timed batches)
  threads:    tool threads decode_threads images seconds timing_source   (tool: tv-extract | python)
  rss:        images rss_kib output_mib wall_seconds
"""
import sys

RATIO_GOAL = 1.05  # end to end / forward-only limit, at most
SPEEDUP_GOALS = {("resnet18", "layer2"): 1.8, ("resnet18", "avgpool"): 1.5}  # tv-extract / Python, at least
FLAT_GROWTH = 0.10  # peak RSS may grow at most this much from the fewest to the most images


def records(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def verdict(ok):
    return "met" if ok else "**not met**"


def extraction(path):
    rows = records(path)
    fallback = any(r[6] != "extract_seconds" for r in rows)
    print("| model | module | images | tv-extract flags | graph | tv-extract | forward-only limit | Python "
          "| end to end / forward (goal ≤ 1.05) | tv-extract / Python (goal) |")
    print("|---|---|---:|---|---|---:|---:|---:|---:|---:|")
    reading = []
    for arch, module, variant, _optimize, images, e2e_s, source, graph, fwd_s, py_images, py_s, warm_s, n in rows:
        e2e = int(images) / float(e2e_s)
        fwd = int(images) / float(fwd_s)
        py = int(py_images) / float(py_s)
        ratio = float(e2e_s) / float(fwd_s)
        speedup = e2e / py
        mark = "" if source == "extract_seconds" else " †"
        goal = SPEEDUP_GOALS.get((arch, module))
        goal_text = f" (≥ {goal}: {verdict(speedup >= goal)})" if goal else ""
        print(f"| {arch} | {module} | {images} | {variant} | {graph} | {e2e:.1f}{mark} | {fwd:.1f} | {py:.1f} "
              f"| {ratio:.2f} ({verdict(ratio <= RATIO_GOAL)}) | {speedup:.2f}×{goal_text} |")
        reading.append(f"- {arch} {module}, {variant}: end to end {ratio:.2f} × the forward-only time "
                       f"(goal ≤ {RATIO_GOAL}: {verdict(ratio <= RATIO_GOAL)}); {speedup:.2f}× Python"
                       + (f" (goal ≥ {goal}×: {verdict(speedup >= goal)})" if goal else "")
                       + ("" if source == "extract_seconds" else " † (model load included)")
                       + f"; forward-only: untimed warm-up batch {float(warm_s):.2f} s, then "
                       f"{float(fwd_s) / int(n):.2f} s a batch.")
    print()
    if fallback:
        print("† manifest.json had no \"timing\" object (this tv-extract predates it): its total \"seconds\", "
              "model load included, so the end-to-end rate is understated there.")
        print()
    print("Reading (computed by bench/report.py):")
    print("\n".join(reading))


def threads(path):
    rows = records(path)
    python = {r[1]: int(r[3]) / float(r[4]) for r in rows if r[0] == "python"}
    print("| tool | threads | decode threads | images/s | tv-extract / Python (same threads) |")
    print("|---|---:|---:|---:|---:|")
    best = None
    for tool, n, decode, images, seconds, source in rows:
        rate = int(images) / float(seconds)
        mark = "" if tool == "python" or source == "extract_seconds" else " †"
        versus = f"{rate / python[n]:.2f}×" if tool == "tv-extract" and n in python else ""
        print(f"| {tool} | {n} | {decode} | {rate:.1f}{mark} | {versus} |")
        if tool == "tv-extract" and (best is None or rate > best[0]):
            best = (rate, n, decode)
    print()
    if any(r[0] == "tv-extract" and r[5] != "extract_seconds" for r in rows):
        print("† total \"seconds\" of manifest.json, model load included (no \"timing\" object).")
        print()
    if best:
        print(f"Reading (computed): the fastest tv-extract setting here is --threads {best[1]}, decode threads "
              f"{best[2]} ({best[0]:.1f} images/s).")


def rss(path):
    rows = records(path)
    print("| images | features written | peak RSS | seconds |")
    print("|---:|---:|---:|---:|")
    for images, rss_kib, output_mib, wall in rows:
        print(f"| {images} | {output_mib} MiB | {int(rss_kib) // 1024} MiB | {float(wall):.1f} |")
    print()
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        growth = int(last[1]) / int(first[1]) - 1
        data = int(last[2]) / max(int(first[2]), 1)
        print(f"Reading (computed): from {first[0]} to {last[0]} images ({int(last[0]) / int(first[0]):.0f}× the "
              f"images, {data:.0f}× the features written) peak RSS changes by {100 * growth:+.1f} % — "
              f"{'flat' if growth <= FLAT_GROWTH else '**not flat**'} (flat: at most "
              f"+{100 * FLAT_GROWTH:.0f} %).")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("extraction", "threads", "rss"):
        sys.exit(__doc__)
    {"extraction": extraction, "threads": threads, "rss": rss}[sys.argv[1]](sys.argv[2])
