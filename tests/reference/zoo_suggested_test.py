"""The sidecar's suggested modules never name a pass-through (nn.Identity, Dropout in eval mode:
its output is its input): a trace records no output for nn.Identity, so tv-extract refuses it. timm's gemma4_vit_167m (children
encoder, norm, head_drop, head = Identity) had `head` suggested, and the sweep's tv-extract run
failed on it. Checked on a stand-in with the same children, through the functions export.py uses
for timm models (models/sources.py: timm_suggested, then called_modules), and on a traced copy:
each suggested module is a call in the traced graph."""
import os
import sys

import torch
from torch import nn

import zoo_common as zc

sys.path.insert(0, zc.MODELS_DIR)
import sources  # noqa: E402


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class GemmaLike(nn.Module):
    """No `blocks`, no feature_info: timm_suggested falls back to the children."""

    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.norm = nn.BatchNorm2d(4)
        self.head_drop = nn.Dropout(0.1)
        self.head = nn.Identity()

    def forward(self, x):
        return self.head(self.head_drop(self.norm(self.encoder(x)).mean((2, 3))))


model = GemmaLike().eval()
prep = {"crop_height": 16, "crop_width": 16, "resize_height": 0, "resize_width": 0}
candidates = sources.timm_suggested(model)
picks = sources.called_modules(model, candidates, prep)
print("candidates", candidates, "-> suggested", picks)
zc.check(picks == ["encoder", "norm"], f"suggested {picks}, expected encoder and norm (no head_drop, head)")

# a module that computes something stays, whatever its type: the same Dropout in training mode
model.head_drop.train()
zc.check("head_drop" in sources.called_modules(model, ["head_drop"], prep),
         "a Dropout that computes (training mode) was dropped")
model.eval()

# in the traced graph every suggested module is a call that returns a tensor; nn.Identity's call
# returns nothing (the premise: tv-extract can record no output for it)
traced = torch.jit.trace(model, torch.zeros(1, 3, 16, 16))
returns = {}
for node in traced.graph.nodes():
    if node.kind() == "prim::CallMethod":
        returns[node.inputsAt(0).debugName()] = str(node.output().type())
print("traced calls", returns)
for name in picks:
    zc.check(returns.get(name) == "Tensor", f"suggested {name}: traced call returns {returns.get(name)}")
zc.check(returns.get("head") == "NoneType", f"nn.Identity's traced call returns {returns.get('head')}")
zc.finish()
