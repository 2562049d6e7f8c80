"""Weights from files and the network: --state-dict with a DataParallel `module.` prefix (and the
{'state_dict': ...} wrapper of CORnet checkpoints), other class counts (Ecoset: 565), wrong state
dicts listing missing/unexpected keys, and `pretrained` offline failing with one clear line."""
import os

import torch
import torchvision

import zoo_common as zc
import export  # noqa: F401 - models/ is on the path through zoo_common

out = zc.work_dir("weights")


def export_and_compare(arch, checkpoint, out_name, eager, input_shape, label):
    """Exports `arch` with --state-dict `checkpoint` into out/`out_name`; the TorchScript model
    gives `eager`'s outputs on a random input of `input_shape`."""
    p = zc.run_export("--arch", arch, "--state-dict", checkpoint, "--out", f"{out}/{out_name}")
    zc.check(p.returncode == 0, f"{label}: {p.stderr}")
    if p.returncode == 0:
        x = torch.randn(*input_shape)
        with torch.no_grad():
            zc.check_close(eager(x), torch.jit.load(f"{out}/{out_name}/{arch}.pt")(x), label)


# --- a DataParallel checkpoint of resnet18: loads, and gives that model's outputs
torch.manual_seed(11)
eager = torchvision.models.resnet18().eval()
torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in eager.state_dict().items()}},
           f"{out}/dp.pth")
export_and_compare("resnet18", f"{out}/dp.pth", "dp", eager, (2, 3, 64, 64), "module.-prefixed")

# --- an Ecoset-like checkpoint (565 classes)
torch.manual_seed(12)
eco = torchvision.models.resnet18(num_classes=565).eval()
torch.save(eco.state_dict(), f"{out}/eco.pth")
export_and_compare("resnet18", f"{out}/eco.pth", "eco", eco, (1, 3, 64, 64), "565 classes")

# --- wrong state dicts: one line naming every missing / unexpected key and shape mismatch
sd = {k: v for k, v in eager.state_dict().items() if k != "layer2.0.conv1.weight"}
sd["layer9.extra.weight"] = torch.zeros(3)
sd["fc.bias"] = torch.zeros(1000)
sd["conv1.weight"] = torch.zeros(64, 3, 3, 3)
torch.save(sd, f"{out}/wrong.pth")
p = zc.run_export("--arch", "resnet18", "--state-dict", f"{out}/wrong.pth", "--out", f"{out}/w")
lines = zc.stderr_lines(p)
zc.check(p.returncode == 1 and len(lines) == 1, f"wrong state dict: rc {p.returncode}, {lines}")
msg = p.stderr
for needle in ("missing keys: layer2.0.conv1.weight", "unexpected keys: layer9.extra.weight",
               "conv1.weight (file [64, 3, 3, 3], model [64, 3, 7, 7])", "wrong.pth"):
    zc.check(needle in msg, f"wrong state dict message lacks '{needle}': {msg}")
zc.check(not os.path.exists(f"{out}/w/resnet18.pt"), "a failed export left a .pt")
torch.save({"not": "weights"}, f"{out}/junk.pth")
p = zc.run_export("--arch", "resnet18", "--state-dict", f"{out}/junk.pth", "--out", f"{out}/w")
zc.check(p.returncode == 1 and "not a state dict" in p.stderr, f"junk: {p.stderr}")

# --- an official-format CORnet checkpoint: {'state_dict': {'module.V1...': ...}}
import cornet  # noqa: E402

torch.manual_seed(13)
cz = cornet.cornet_z().eval()
torch.save({"epoch": 70, "arch": "CORnet_Z",
            "state_dict": {"module." + k: v for k, v in cz.state_dict().items()}},
           f"{out}/cornet_z.pth")
export_and_compare("cornet_z", f"{out}/cornet_z.pth", "c", cz, (1, 3, 96, 96),
                   "CORnet-Z checkpoint")

# --- pretrained offline: no cached file, no network -> one line, non-zero exit
offline = {"TORCH_HOME": f"{out}/torch_home", "https_proxy": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
for arch, url in [("resnet18", torchvision.models.ResNet18_Weights.DEFAULT.url),
                  ("cornet_s", cornet.CHECKPOINT_URLS["cornet_s"])]:
    p = zc.run_export("--arch", arch, "--weights", "pretrained", "--out", f"{out}/p", env=offline)
    lines = zc.stderr_lines(p)
    zc.check(p.returncode != 0, f"{arch} pretrained offline: exit 0")
    zc.check(len(lines) == 1, f"{arch} pretrained offline: {len(lines)} lines: {lines}")
    zc.check(bool(lines) and "download" in lines[0] and "failed" in lines[0] and url in lines[0]
             and "--state-dict" in lines[0], f"{arch} pretrained offline message: {lines}")
    zc.check(not os.path.exists(f"{out}/p/{arch}.pt"), f"{arch}: a failed export left a .pt")
    print(lines[0] if lines else "")
p = zc.run_export("--arch", "clip_rn50_standin", "--weights", "pretrained", "--out", f"{out}/p")
zc.check(p.returncode == 1 and len(zc.stderr_lines(p)) == 1, f"clip pretrained: {p.stderr}")
zc.finish()
