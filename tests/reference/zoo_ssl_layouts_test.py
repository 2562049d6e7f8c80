"""models/export.py --source ssl/custom --state-dict: the published checkpoint layouts of THINGSvision's
ResNet-50 families and Ecoset models, from synthetic files shaped like them (issue 18).

For each ssl ResNet-50 name a seeded torchvision resnet50 trunk (fc removed, BatchNorm statistics
randomised) is written in its published layout: VISSL (`classy_state_dict` → `base_model` → `model`
→ `trunk` with `_feature_blocks.` keys, plus a head) or plain torchvision keys (Barlow Twins,
VICReg, DINO-RN50); once each also VISSL's `model_state_dict` form and a DataParallel `module.`
prefix. The
exported archive must hold exactly the trunk's tensors. A checkpoint of another architecture is one
error line listing the missing keys; `--pretrained` offline is one line naming the URL and the
--state-dict command (ssl, Ecoset; timm and OpenCLIP where this python has them).

  zoo_ssl_layouts_test.py [WORK]     (any python with torch and torchvision)
"""
import importlib.util
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo_common as zc  # noqa: E402

RESNET50 = ["simclr-rn50", "mocov2-rn50", "jigsaw-rn50", "rotnet-rn50", "swav-rn50", "pirl-rn50",
            "barlowtwins-rn50", "vicreg-rn50", "dino-rn50"]
VISSL = RESNET50[:6]


def trunk(seed):
    torch.manual_seed(seed)
    model = torchvision.models.resnet50()
    model.fc = torch.nn.Identity()
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.state_dict()


def layouts(name, sd):
    """(label, checkpoint) pairs in the layouts `name` is published in (and accepted forms)."""
    if name in VISSL:
        fb = {"_feature_blocks." + k: v for k, v in sd.items()}
        out = [("vissl classy_state_dict",
                {"phase_idx": 1, "classy_state_dict": {"base_model": {"model": {
                    "trunk": fb, "heads": {"0.clf.0.weight": torch.zeros(8, 2048)}}}}})]
        if name == "simclr-rn50":  # the other VISSL form, once
            out.append(("vissl model_state_dict", {"model_state_dict": fb}))
        return out
    out = [("plain", dict(sd))]
    if name == "vicreg-rn50":  # a DataParallel prefix, once
        out.append(("module. prefix", {"module." + k: v for k, v in sd.items()}))
    return out


def main():
    work = zc.work_dir("ssl_layouts")
    for i, name in enumerate(RESNET50):
        sd = trunk(10 + i)
        for label, checkpoint in layouts(name, sd):
            path = os.path.join(work, f"{name}.pth")
            torch.save(checkpoint, path)
            out = os.path.join(work, "out")
            p = zc.run_export("--source", "ssl", "--model", name, "--state-dict", path, "--out", out)
            if not zc.check(p.returncode == 0, f"{name} ({label}): {p.stderr.strip()}"):
                continue
            got = torch.jit.load(os.path.join(out, name + ".pt")).state_dict()
            keys_ok = set(got) == set(sd)
            zc.check(keys_ok, f"{name} ({label}): archive keys differ from the trunk's: "
                              f"{sorted(set(got) ^ set(sd))[:5]}")
            if keys_ok:
                same = all(torch.equal(got[k], sd[k]) for k in sd)
                zc.check(same, f"{name} ({label}): tensors differ")
                print(f"ok: {name} ({label}): {len(sd)} tensors")

    # another architecture's checkpoint: one line naming the file and the missing keys
    bad = os.path.join(work, "resnet18.pth")
    torch.save(torchvision.models.resnet18().state_dict(), bad)
    p = zc.run_export("--source", "ssl", "--model", "simclr-rn50", "--state-dict", bad, "--out",
                      os.path.join(work, "bad"))
    lines = zc.stderr_lines(p)
    zc.check(p.returncode == 1 and len(lines) == 1 and f"--state-dict {bad} does not fit" in lines[0]
             and "missing keys: layer1.0.conv3.weight" in lines[0], f"wrong checkpoint: {lines}")

    # --pretrained offline: one line with the URL and the command to run instead
    expected = {
        ("ssl", "simclr-rn50"): ["dl.fbaipublicfiles.com/vissl/model_zoo/simclr_rn50_800ep",
                                 "--source ssl --model simclr-rn50 --state-dict "
                                 "model_final_checkpoint_phase799.torch"],
        ("ssl", "dinov2-vit-small-p14"): ["dinov2_vits14_pretrain.pth",
                                          "--state-dict dinov2_vits14_pretrain.pth"],
        ("custom", "Resnet50_ecoset"): ["https://osf.io/gd9kn/download",
                                        "--state-dict Resnet50_ecoset"],
    }
    try:
        import timm  # noqa: F401
        expected[("timm", "resnet18")] = ["timm model resnet18 through timm (Hugging Face hub) failed",
                                          "--state-dict FILE"]
    except ImportError:
        print("timm not installed: its offline message is not checked here")
    env = {"TORCH_HOME": os.path.join(work, "torch_home"), "HF_HOME": os.path.join(work, "hf_home"),
           "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
           "HTTPS_PROXY": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "1"}
    for (source, name), texts in expected.items():
        p = zc.run_export("--source", source, "--model", name, "--pretrained", "--out",
                          os.path.join(work, "pre"), env=env)
        lines = zc.stderr_lines(p)
        ok = p.returncode == 1 and len(lines) == 1 and lines[0].startswith(
            "export.py: error: downloading the pretrained weights of") and all(t in lines[0] for t in texts)
        zc.check(ok, f"--pretrained {source}/{name} offline: exit {p.returncode}, {lines}")
        if ok:
            print(f"ok: offline {source}/{name}: {lines[0][:120]}...")
    # an OpenCLIP image tower alone (Hugging Face text tower): its download goes through
    # open_clip's registry too, and fails in one line with nothing written
    if importlib.util.find_spec("open_clip") is not None:
        pre = os.path.join(work, "pre_openclip")
        p = zc.run_export("--source", "custom", "--model", "OpenCLIP", "--variant", "roberta-ViT-B-32",
                          "--dataset", "laion2b_s12b_b32k", "--pretrained", "--out", pre, env=env)
        lines = zc.stderr_lines(p)
        zc.check(p.returncode == 1 and len(lines) == 1 and all(
            t in lines[0] for t in ("downloading the pretrained weights of OpenCLIP "
                                    "roberta-ViT-B-32/laion2b_s12b_b32k", "--state-dict FILE"))
                 and not os.path.exists(pre), f"OpenCLIP roberta-ViT-B-32 pretrained offline: {lines}")
        # a checkpoint without the image tower's tensors: one line naming what its keys are
        out = os.path.join(work, "novisual")
        p = zc.run_export("--source", "custom", "--model", "OpenCLIP", "--variant", "roberta-ViT-B-32",
                          "--state-dict", bad, "--out", out)
        lines = zc.stderr_lines(p)
        zc.check(p.returncode == 1 and len(lines) == 1 and all(
            t in lines[0] for t in ("roberta-ViT-B-32 has no 'visual.*' tensors", "'layer1'", "'fc'"))
                 and not (os.path.isdir(out) and any(f.endswith(".pt") for f in os.listdir(out))),
                 f"OpenCLIP checkpoint without visual.*: exit {p.returncode}, {lines}")
    zc.finish()


if __name__ == "__main__":
    main()
