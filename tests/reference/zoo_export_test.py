"""Exports one torchvision architecture with random weights (seed 7) through the CLI and checks
that the TorchScript file gives the outputs of the eager torchvision model built independently
here with the same seed, and that the sidecar describes it.
  zoo_export_test.py WORK_DIR ARCH [INPUT_SIZE]"""
import json
import sys
import warnings

import torch
import torchvision

import zoo_common as zc

arch = sys.argv[2]
size = int(sys.argv[3]) if len(sys.argv) > 3 else 112
out = zc.work_dir("export_" + arch)
proc = zc.run_export("--arch", arch, "--weights", "random", "--seed", "7", "--out", out)
zc.check(proc.returncode == 0, f"export {arch} failed: {proc.stderr.strip()}")
if proc.returncode == 0:
    torch.manual_seed(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eager = torchvision.models.get_model(arch, weights=None).eval()
    extra = {"module_tree.txt": ""}
    scripted = torch.jit.load(f"{out}/{arch}.pt", _extra_files=extra)
    torch.manual_seed(1)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        ref = zc.first_tensor(eager(x))
        got = zc.first_tensor(scripted(x))
    zc.check_close(ref, got, f"{arch} forward")
    zc.check(extra["module_tree.txt"].decode() == repr(eager),
             f"{arch}: module_tree.txt is not the eager repr")
    eager_names = [n for n, _ in eager.named_modules()]
    script_names = [n for n, _ in scripted.named_modules()]
    missing = [n for n in eager_names if n not in script_names]
    zc.check(not missing, f"{arch}: modules missing from TorchScript: {missing[:5]}")
    with open(f"{out}/{arch}.json") as f:
        side = json.load(f)
    zc.check(side["architecture"] == arch and side["weights"] == "random" and side["seed"] == 7,
             f"{arch}: sidecar identity {side}")
    zc.check(side["export_method"] in ("script", "trace"), f"{arch}: export_method")
    zc.check(all(m in eager_names for m in side["suggested_modules"]),
             f"{arch}: suggested modules {side['suggested_modules']} not all in the model")
    zc.check(side["preprocessing"]["preset"] == "thingsvision", f"{arch}: preset")
    zc.check(side["token_mode"] is None and side["entry_method"] == "forward",
             f"{arch}: token_mode {side['token_mode']} / entry {side['entry_method']}")
import shutil  # noqa: E402 - the files are large; keep the data dir small
shutil.rmtree(out, ignore_errors=True)
zc.finish()
