"""Shared helpers of the zoo tests (tests/model/zoo.cmake): run models/export.py, compare outputs."""
import os
import shutil
import subprocess
import sys

import torch

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS_DIR = os.path.join(SOURCE_DIR, "models")
EXPORT = os.path.join(MODELS_DIR, "export.py")
sys.path.insert(0, MODELS_DIR)

failures = []


def work_dir(name):
    """A fresh directory for test `name` (argv[1] if given, else under /tmp)."""
    base = sys.argv[1] if len(sys.argv) > 1 else os.path.join("/tmp", "tv-zoo-tests")
    path = os.path.join(base, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def run_export(*args, env=None):
    """Runs export.py with `args`; returns the CompletedProcess (text output captured)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, EXPORT, *args], capture_output=True, text=True,
                          env=full_env)


def export_random(arch, seed, out, build):
    """Exports `arch` with random weights from `seed` into `out`; returns the loaded TorchScript
    model and the eager `build(arch)` made under the same seed, in eval mode."""
    p = run_export("--arch", arch, "--weights", "random", "--seed", str(seed), "--out", out)
    check(p.returncode == 0, f"export {arch}: {p.stderr}")
    scripted = torch.jit.load(f"{out}/{arch}.pt")
    torch.manual_seed(seed)
    return scripted, build(arch).eval()


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message)
    return condition


def check_close(ref, got, label, rel=1e-5):
    """|ref - got| <= rel * max|ref| everywhere, shapes equal."""
    if not check(tuple(ref.shape) == tuple(got.shape),
                 f"{label}: shape {tuple(got.shape)} != {tuple(ref.shape)}"):
        return
    scale = ref.abs().max().item()
    diff = (ref - got).abs().max().item()
    check(diff <= rel * scale, f"{label}: max |diff| {diff:.3g} > {rel} * max|ref| {scale:.3g}")
    print(f"{label}: max |diff| {diff:.3g}, max |ref| {scale:.3g}")


def first_tensor(out):
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out


def finish():
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("OK")
    sys.exit(0)


def stderr_lines(proc):
    return [line for line in proc.stderr.splitlines() if line.strip()]


torch.set_num_threads(1)
