#!/usr/bin/env python3
"""Writes tests/data/torch2/sdpa_patch_model.pt: a tiny scripted model that calls
torch.nn.functional.scaled_dot_product_attention (an op torch 2.0 added), saved by plain
torch.jit.save of a torch >= 2.0. LibTorch 1.13 cannot load it: tests/cli/version_skew_test.sh checks
the error says so. Run with PyPI's torch (the venv of scripts/setup-venv.sh):

  .venv/bin/python tests/reference/make_torch2_archive.py tests/data/torch2/sdpa_patch_model.pt
"""
import sys

import torch
from torch import nn


class SdpaPatchModel(nn.Module):
    """16x16 patches -> 8 features -> one self-attention -> mean over patches -> 4 outputs."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 8, kernel_size=16, stride=16)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        tokens = self.norm(self.patch(x).flatten(2).transpose(1, 2))
        attended = torch.nn.functional.scaled_dot_product_attention(tokens, tokens, tokens)
        return self.head(attended.mean(dim=1))


def main():
    if int(torch.__version__.split(".")[0]) < 2:
        sys.exit("make_torch2_archive.py needs torch >= 2.0 (this is %s)" % torch.__version__)
    torch.manual_seed(0)
    model = torch.jit.script(SdpaPatchModel().eval())
    torch.jit.save(model, sys.argv[1])


if __name__ == "__main__":
    main()
