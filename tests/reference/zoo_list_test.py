"""export.py --list: every torchvision classification model of the installed torchvision, the four
CORnets and the CLIP stand-ins; and the families issue #7 names are all there."""
import torchvision

import zoo_common as zc

p = zc.run_export("--list")
listed = p.stdout.split()
zc.check(p.returncode == 0, f"--list failed: {p.stderr}")
tv = torchvision.models.list_models(module=torchvision.models)
zc.check(len(tv) >= 80, f"torchvision lists only {len(tv)} classification models")
zc.check(not [a for a in tv if a not in listed], f"missing: {[a for a in tv if a not in listed]}")
extra = ["cornet_z", "cornet_r", "cornet_rt", "cornet_s", "clip_rn50_standin",
         "clip_vit_b32_standin"]
zc.check(all(a in listed for a in extra), f"missing CORnet/CLIP entries: {listed}")
zc.check(len(listed) == len(set(listed)) == len(tv) + len(extra), "duplicates or extras")
for name in ["alexnet", "vgg16", "vgg19_bn", "resnet152", "resnext101_64x4d", "wide_resnet50_2",
             "densenet201", "googlenet", "inception_v3", "squeezenet1_0", "shufflenet_v2_x2_0",
             "mobilenet_v2", "mobilenet_v3_large", "mnasnet1_3", "efficientnet_b7",
             "efficientnet_v2_s", "regnet_y_128gf", "convnext_large", "vit_h_14", "swin_v2_b"]:
    zc.check(name in listed, f"{name} not listed")
zc.finish()
