"""export.py --format onnx (issue #8's first step): a checked ONNX graph with the named input
"input" and output "output" (dynamic batch), BatchNorm kept as nodes, no Identity nodes (OpenCV
4.6 cannot parse torch 1.13's deduplicated initializers), weights equal to the eager model's, and
a sidecar saying so. (No ONNX runtime here: the numbers are compared by the C++ OpenCV backend.)"""
import hashlib
import json

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torchvision

import zoo_common as zc

out = zc.work_dir("onnx")
p = zc.run_export("--arch", "resnet18", "--weights", "random", "--seed", "8", "--format", "onnx",
                  "--out", out)
zc.check(p.returncode == 0, f"onnx export: {p.stderr}")
model = onnx.load(f"{out}/resnet18.onnx")
onnx.checker.check_model(model)
graph = model.graph
zc.check([i.name for i in graph.input] == ["input"], f"inputs {[i.name for i in graph.input]}")
zc.check([o.name for o in graph.output] == ["output"], f"outputs {[o.name for o in graph.output]}")
zc.check(graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch", "batch dim not dynamic")
ops = [n.op_type for n in graph.node]
torch.manual_seed(8)
eager = torchvision.models.resnet18().eval()
bns = sum(isinstance(m, torch.nn.BatchNorm2d) for m in eager.modules())
zc.check(ops.count("Identity") == 0, f"{ops.count('Identity')} Identity nodes left")
zc.check(ops.count("BatchNormalization") == bns, f"{ops.count('BatchNormalization')} BN nodes, "
         f"model has {bns}")
names = [n.name for n in graph.node]
zc.check("/layer1/layer1.0/conv1/Conv" in names, f"scoped node names missing: {names[:5]}")
init = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
produced = {o for n in graph.node for o in n.output}
dangling = [i for n in graph.node for i in n.input
            if i and i not in init and i not in produced and i != "input"]
zc.check(not dangling, f"inputs nobody produces: {dangling[:5]}")
zc.check(np.array_equal(init["conv1.weight"], eager.conv1.weight.detach().numpy()),
         "conv1.weight differs from the eager model's")
with open(f"{out}/resnet18.json") as f:
    side = json.load(f)
zc.check(side["format"] == "onnx" and side["file"] == "resnet18.onnx"
         and side["output_names"] == ["output"] and side["onnx_opset"] == 13, f"sidecar {side}")
zc.check(side["sha256"] == hashlib.sha256(open(f"{out}/resnet18.onnx", "rb").read()).hexdigest(),
         "sidecar sha256")
zc.check(side["preprocessing"]["resize_size"] == 256, "preprocessing")

p = zc.run_export("--arch", "clip_rn50_standin", "--weights", "random", "--format", "onnx",
                  "--out", out)
zc.check(p.returncode == 0, f"clip onnx export: {p.stderr}")
if p.returncode == 0:
    clip = onnx.load(f"{out}/clip_rn50_standin.onnx")
    zc.check(len(clip.graph.input) == 1 and [o.name for o in clip.graph.output] == ["output"],
             "clip onnx is encode_image with one input")
zc.finish()
