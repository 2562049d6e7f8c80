"""CORnet-Z/R/RT/S (models/cornet.py): export through the CLI, TorchScript output equal to an
independent functional implementation of the published recurrences (written here from the
official code's description, reading the weights by their official state-dict names), the
official module names present, and how often each module runs per forward pass.
  zoo_cornet_test.py WORK_DIR ARCH"""
import sys

import torch
import torch.nn.functional as F

import zoo_common as zc
import cornet

arch = sys.argv[2]
out = zc.work_dir("cornet_" + arch)


def block_r(sd, name, inp, state, zero_shape):
    """One CORblock_R/RT call: (input conv, GroupNorm, ReLU) or zeros, + state, conv1, GN, ReLU."""
    if inp is None:
        x = torch.zeros(zero_shape)
    else:
        x = F.conv2d(inp, sd[f"{name}.conv_input.weight"], sd[f"{name}.conv_input.bias"],
                     stride=4 if name == "V1" else 2, padding=3 if name == "V1" else 1)
        x = F.relu(F.group_norm(x, 32, sd[f"{name}.norm_input.weight"],
                                sd[f"{name}.norm_input.bias"]))
    skip = x if state is None else x + state
    x = F.conv2d(skip, sd[f"{name}.conv1.weight"], None, padding=1)
    return F.relu(F.group_norm(x, 32, sd[f"{name}.norm1.weight"], sd[f"{name}.norm1.bias"]))


def reference_r(sd, image, times, unrolled):
    """CORnet-R (unrolled=False: a block reads the block below at this time step) and CORnet-RT
    (unrolled=True: at the previous time step). Zero inputs are 56/28/14/7 at 224 x 224."""
    blocks = ["V1", "V2", "V4", "IT"]
    channels = {"V1": 64, "V2": 128, "V4": 256, "IT": 512}
    side = {"V1": 56, "V2": 28, "V4": 14, "IT": 7}
    n = image.shape[0]
    outputs, states = {"inp": image}, {}
    for b in blocks:
        o = block_r(sd, b, image if b == "V1" else None, None, (n, channels[b], side[b], side[b]))
        outputs[b] = states[b] = o
    for _ in range(1, times):
        source = dict(outputs) if unrolled else outputs
        for i, b in enumerate(blocks):
            below = "inp" if i == 0 else blocks[i - 1]
            o = block_r(sd, b, source[below], states[b], None)
            outputs[b] = states[b] = o
    return decoder(sd, outputs["IT"])


def bn(sd, name, x):
    return F.batch_norm(x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"],
                        sd[f"{name}.weight"], sd[f"{name}.bias"], False, 0.0, 1e-5)


def reference_s(sd, image):
    """CORnet-S: conv2 has stride 2 at the first step of a block and 1 afterwards."""
    x = F.conv2d(image, sd["V1.conv1.weight"], stride=2, padding=3)
    x = F.relu(bn(sd, "V1.norm1", x))
    x = F.max_pool2d(x, 3, 2, 1)
    x = F.relu(bn(sd, "V1.norm2", F.conv2d(x, sd["V1.conv2.weight"], padding=1)))
    for name, times in [("V2", 2), ("V4", 4), ("IT", 2)]:
        x = F.conv2d(x, sd[f"{name}.conv_input.weight"])
        for t in range(times):
            if t == 0:
                skip = bn(sd, f"{name}.norm_skip", F.conv2d(x, sd[f"{name}.skip.weight"], stride=2))
            else:
                skip = x
            y = F.relu(bn(sd, f"{name}.norm1_{t}", F.conv2d(x, sd[f"{name}.conv1.weight"])))
            y = F.conv2d(y, sd[f"{name}.conv2.weight"], stride=2 if t == 0 else 1, padding=1)
            y = F.relu(bn(sd, f"{name}.norm2_{t}", y))
            y = bn(sd, f"{name}.norm3_{t}", F.conv2d(y, sd[f"{name}.conv3.weight"]))
            x = F.relu(y + skip)
    return decoder(sd, x)


def reference_z(sd, image):
    x = image
    for name, k, s in [("V1", 7, 2), ("V2", 3, 1), ("V4", 3, 1), ("IT", 3, 1)]:
        x = F.conv2d(x, sd[f"{name}.conv.weight"], sd[f"{name}.conv.bias"], stride=s,
                     padding=k // 2)
        x = F.max_pool2d(F.relu(x), 3, 2, 1)
    return decoder(sd, x)


def decoder(sd, x):
    return F.linear(x.mean(dim=(2, 3)), sd["decoder.linear.weight"], sd["decoder.linear.bias"])


# Export (random weights, seed 5), then give every normalisation layer non-trivial statistics
# and affine parameters so that the check sees them; the same state dict feeds both sides.
scripted, eager = zc.export_random(arch, 5, out, cornet.build)
g = torch.Generator().manual_seed(9)
with torch.no_grad():
    for name, t in eager.state_dict().items():
        if ".norm" in name and t.is_floating_point():
            t.copy_(torch.rand(t.shape, generator=g) * 0.5 + (0.75 if name.endswith(("weight", "var")) else -0.25))
    scripted_sd = dict(scripted.state_dict())
    for name, t in eager.state_dict().items():
        scripted_sd[name].copy_(t)
sd = {k: v.clone() for k, v in eager.state_dict().items()}

image = torch.rand(2, 3, 224, 224, generator=g) * 4 - 2
with torch.no_grad():
    got = scripted(image)
    ref = {"cornet_z": lambda: reference_z(sd, image),
           "cornet_r": lambda: reference_r(sd, image, 5, unrolled=False),
           "cornet_rt": lambda: reference_r(sd, image, 5, unrolled=True),
           "cornet_s": lambda: reference_s(sd, image)}[arch]()
    zc.check_close(ref, got, f"{arch} TorchScript vs functional reference", rel=1e-4)
    zc.check_close(eager(image), got, f"{arch} TorchScript vs eager")
    if arch in ("cornet_r", "cornet_rt"):  # the two recurrences differ, and the test can tell
        other = reference_r(sd, image, 5, unrolled=(arch == "cornet_r"))
        zc.check((other - got).abs().max().item() > 1e-3, "R and RT references coincide")
    if arch != "cornet_z":  # other input sizes work too (the official R/RT need 224)
        zc.check_close(eager(image[:, :, :160, :192]), scripted(image[:, :, :160, :192]),
                       f"{arch} at 160 x 192")

# Official module names: present in TorchScript; per-forward call counts of the eager model.
names = {
    "cornet_z": [f"{b}.{m}" for b in ("V1", "V2", "V4", "IT")
                 for m in ("conv", "nonlin", "pool", "output")] + ["decoder.output"],
    "cornet_r": [f"{b}.{m}" for b in ("V1", "V2", "V4", "IT")
                 for m in ("conv_input", "norm_input", "nonlin_input", "conv1", "norm1",
                           "nonlin1", "output")],
    "cornet_s": ["V1.conv1", "V1.norm1", "V1.nonlin1", "V1.pool", "V1.conv2", "V1.norm2",
                 "V1.nonlin2", "V1.output", "decoder.output"]
                + [f"{b}.{m}" for b in ("V2", "V4", "IT")
                   for m in ("conv_input", "skip", "norm_skip", "conv1", "nonlin1", "conv2",
                             "nonlin2", "conv3", "nonlin3", "output", "norm1_0", "norm2_0",
                             "norm3_1")] + ["V4.norm1_3", "V4.norm3_3"],
}
names["cornet_rt"] = names["cornet_r"]
expected = ["V1", "V2", "V4", "IT", "decoder", "decoder.avgpool", "decoder.flatten",
            "decoder.linear"] + names[arch]
script_names = {n for n, _ in scripted.named_modules()}
missing = [n for n in expected if n not in script_names]
zc.check(not missing, f"{arch}: official module names missing from TorchScript: {missing}")
eager_modules = dict(eager.named_modules())
calls = {}
last = {}
for n in expected:
    def hook(_m, _i, o, n=n):
        calls[n] = calls.get(n, 0) + 1
        last[n] = o[0] if isinstance(o, tuple) else o
    eager_modules[n].register_forward_hook(hook)
with torch.no_grad():
    eager(image)
want = {"cornet_z": {"V1": 1, "IT.output": 1},
        "cornet_r": {"V1": 5, "IT": 5, "V1.conv_input": 5, "V2.conv1": 5, "IT.output": 5},
        "cornet_s": {"V1": 1, "V2": 1, "V4": 1, "V2.conv1": 2, "V4.conv1": 4, "IT.output": 2,
                     "V4.skip": 1, "V4.norm1_3": 1}}
want["cornet_rt"] = want["cornet_r"]
for n, count in want[arch].items():
    zc.check(calls.get(n) == count, f"{arch}: {n} called {calls.get(n)} times, not {count}")
zc.check(all(calls.get(n, 0) >= 1 for n in expected),
         f"{arch}: modules never called: {[n for n in expected if not calls.get(n)]}")
# The last call of IT.output is what the read-out sees (THINGSvision's hook semantics).
zc.check_close(last["decoder.avgpool"].flatten(1), last["IT.output"].mean(dim=(2, 3)),
               f"{arch}: decoder input is IT.output's last call")
import shutil  # noqa: E402
shutil.rmtree(out, ignore_errors=True)
zc.finish()
