"""export.py --serve (scripts/export_all.sh's exporter): each request runs in a forked child, so that
the serving process gives every model's memory back (its resident size does not grow by the model's
size), a child killed by SIGKILL (as the out-of-memory killer does) is one reply line saying so, and
the next request still runs."""
import importlib.util
import io
import os
import signal

import zoo_common as zc
import export

out = zc.work_dir("serve")


def resident_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- a model's memory is freed. timm's vit_base_patch16_224 (330 MiB of float32 weights; with
# PyPI's torch 2.x, serving in-process kept 200 MiB of it), else torchvision's vit_b_32 (Debian's
# torch 1.13 gave that back even in-process).
if importlib.util.find_spec("timm"):
    request, stem = "--source timm --model vit_base_patch16_224", "vit_base_patch16_224"
else:
    request, stem = "--arch vit_b_32", "vit_b_32"
export.serve(io.StringIO(f"--arch squeezenet1_1 --weights random --out {out}\n"), io.StringIO())  # warm-up
before = resident_mib()
replies = io.StringIO()
export.serve(io.StringIO(f"{request} --weights random --out {out}\n"), replies)
grown = resident_mib() - before
zc.check(replies.getvalue().startswith("0\t") and os.path.exists(f"{out}/{stem}.pt"),
         f"{stem}: {replies.getvalue()!r}")
zc.check(grown < 64, f"the serving process grew by {grown:.0f} MiB exporting {stem}")

# --- a request whose process gets SIGKILL: one reply saying so; the next request runs
plain_run_request = export.run_request


def killed_for_resnet18(line):
    if "resnet18" in line:
        os.kill(os.getpid(), signal.SIGKILL)
    return plain_run_request(line)


export.run_request = killed_for_resnet18
replies = io.StringIO()
export.serve(io.StringIO(f"--arch resnet18 --weights random --out {out}\n"
                         f"--arch squeezenet1_1 --weights random --out {out}\n"), replies)
lines = replies.getvalue().splitlines()
zc.check(len(lines) == 2, f"replies: {lines}")
zc.check(lines[0].startswith("137\tthe export was killed (SIGKILL: out of memory on this machine's "),
         f"reply to the killed request: {lines[0]!r}")
zc.check(lines[1:] and lines[1].startswith("0\t") and os.path.exists(f"{out}/squeezenet1_1.pt"),
         f"reply to the next request: {lines[1:]}")
zc.finish()
