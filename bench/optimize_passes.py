#!/usr/bin/python3
"""Forward time of a torchvision model under each TorchScript optimization level, for the choice
ModelOptions::optimize makes (src/model/torch/torchscript_backend.cpp, add_optimized): eager,
scripted, frozen (torch.jit.freeze + the frozen-graph passes) and frozen + optimize_for_inference.
Random weights (seed 0), one random batch, no_grad; the variants run round-robin after two warm-up
calls each (the profiling executor), and the median of the rounds is printed. Reported, not asserted.

Usage: python3 bench/optimize_passes.py [--threads 2] [--batch 32] [--rounds 4] ARCH [ARCH ...]
"""
import argparse
import statistics
import time

import torch
import torchvision


def variants(model):
    frozen = torch.jit.freeze(torch.jit.script(model).eval())
    optimized = torch.jit.freeze(torch.jit.script(model).eval())
    torch._C._jit_pass_optimize_frozen_graph(optimized.graph, True)
    torch._C._jit_pass_optimize_for_inference(optimized._c, [])
    return {"eager": model, "scripted": torch.jit.script(model).eval(), "frozen": frozen,
            "frozen + optimize_for_inference": optimized}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("arch", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, median of {args.rounds}")
    for arch in args.arch:
        torch.manual_seed(0)
        runs = variants(getattr(torchvision.models, arch)().eval())
        x = torch.randn(args.batch, 3, 224, 224)
        seconds = {name: [] for name in runs}
        with torch.no_grad():
            for run in runs.values():
                run(x[:2])
                run(x)
            for _ in range(args.rounds):
                for name, run in runs.items():
                    start = time.perf_counter()
                    run(x)
                    seconds[name].append(time.perf_counter() - start)
        frozen = statistics.median(seconds["frozen"])
        for name, values in seconds.items():
            median = statistics.median(values)
            print(f"{arch:16s} {name:32s} {median:7.2f} s  {median / frozen:5.2f}x frozen")


if __name__ == "__main__":
    main()
