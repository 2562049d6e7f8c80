"""CORnet-Z, -R, -RT and -S (Kubilius et al. 2018, 2019), written to be scriptable by TorchScript.

Module names and parameter names follow the official implementation (github.com/dicarlolab/CORnet),
so its checkpoints load directly (after the `module.` prefix of the DataParallel wrapper is
stripped): blocks `V1`, `V2`, `V4`, `IT`, each with `conv*`, `nonlin*`, `output`, and the read-out
`decoder.avgpool`, `decoder.flatten`, `decoder.linear`.

Deliberate differences from the official code (none changes a number for the 224 x 224 input the
networks were trained on):
- CORnet-R/RT: the 5 time steps are unrolled, and the zero input of V2, V4 and IT at the first
  time step is made by zeroing the input path's result (see CORblock_R), so that no module call
  sits in a TorchScript loop or branch (the C++ extractor taps every call, `--all-calls`). The
  zeros take their size from the image (the official code hard-codes 56/28/14/7 and fails for
  other input sizes). Consequence: `conv_input`, `norm_input` and `nonlin_input` of V2/V4/IT run 5
  times per forward pass instead of 4 (their first outputs are discarded); every block output is
  the official one.
- CORnet-S: `conv2` changes its stride between time steps; the official code assigns
  `self.conv2.stride`, which TorchScript cannot compile, so `conv2` is a `StepConv2d` (a Conv2d
  whose forward takes the stride). Its parameters and name are unchanged.
- The residual additions are out of place (`x = x + skip`), so a module output recorded by a hook
  is never modified afterwards. CORnet-S's per-step BatchNorms are spelled out (at most 4 steps)
  for the same reason as above.

Recurrence, as in the official code: R/RT call each whole block `times` (5) times per forward pass;
CORnet-S calls each block once and its inner modules (`conv1`, `nonlin1`, ..., `output`) `times`
times (2/4/2 for V2/V4/IT); a forward hook therefore sees the last call (THINGSvision's behaviour).
"""
from collections import OrderedDict
from typing import Optional, Tuple

import torch
from torch import Tensor, nn
import torch.nn.functional as F

__all__ = ["cornet_z", "cornet_r", "cornet_rt", "cornet_s", "build", "ARCHITECTURES", "CHECKPOINT_URLS"]

# Official checkpoints ({'state_dict': ...} saved from a DataParallel model).
CHECKPOINT_URLS = {
    "cornet_z": "https://s3.amazonaws.com/cornet-models/cornet_z-5c427c9c.pth",
    "cornet_r": "https://s3.amazonaws.com/cornet-models/cornet_r-5930a990.pth",
    "cornet_rt": "https://s3.amazonaws.com/cornet-models/cornet_rt-933c001c.pth",
    "cornet_s": "https://s3.amazonaws.com/cornet-models/cornet_s-1d3f7974.pth",
}


class Flatten(nn.Module):
    """Flattens (N, C, 1, 1) to (N, C) for the linear read-out."""

    def forward(self, x: Tensor) -> Tensor:
        return x.view(x.size(0), -1)


class Identity(nn.Module):
    """Returns its input; gives each block a named `output` module to extract from."""

    def forward(self, x: Tensor) -> Tensor:
        return x


def _decoder(with_output: bool) -> nn.Sequential:
    layers = [("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", Flatten()),
              ("linear", nn.Linear(512, 1000))]
    if with_output:
        layers.append(("output", Identity()))
    return nn.Sequential(OrderedDict(layers))


# ---------------------------------------------------------------------------------------- CORnet-Z
class CORblock_Z(nn.Module):
    """conv -> ReLU -> max-pool (3, stride 2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=kernel_size // 2)
        self.nonlin = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.output = Identity()

    def forward(self, inp: Tensor) -> Tensor:
        return self.output(self.pool(self.nonlin(self.conv(inp))))


def cornet_z() -> nn.Sequential:
    """CORnet-Z: four feed-forward conv blocks and a linear read-out (Xavier-uniform init)."""
    model = nn.Sequential(OrderedDict([
        ("V1", CORblock_Z(3, 64, kernel_size=7, stride=2)),
        ("V2", CORblock_Z(64, 128)),
        ("V4", CORblock_Z(128, 256)),
        ("IT", CORblock_Z(256, 512)),
        ("decoder", _decoder(with_output=True)),
    ]))
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


# ------------------------------------------------------------------------------------ CORnet-R/RT
class CORblock_R(nn.Module):
    """Recurrent block: input conv (+GroupNorm, ReLU), added to the state, then conv1 (+GroupNorm,
    ReLU). Returns (output, new state), the same tensor twice, as the official block does.

    At the first time step V2, V4 and IT have no input yet (the official code passes None and uses
    zeros): here the caller passes the block below's first output with zero_input=True, and the
    input path's result is replaced by zeros of its shape. The block's output is the official one;
    conv_input/norm_input/nonlin_input run once more than in the official code (5 times, not 4).
    This keeps every module call outside branches and loops of the TorchScript graph, where the
    C++ extractor can tap it."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv_input = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                                    padding=kernel_size // 2)
        self.norm_input = nn.GroupNorm(32, out_channels)
        self.nonlin_input = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(32, out_channels)
        self.nonlin1 = nn.ReLU(inplace=True)
        self.output = Identity()

    def forward(self, inp: Tensor, state: Optional[Tensor] = None,
                zero_input: bool = False) -> Tuple[Tensor, Tensor]:
        x = self.nonlin_input(self.norm_input(self.conv_input(inp)))
        if zero_input:
            x = torch.zeros_like(x)
        skip = x if state is None else x + state
        out = self.output(self.nonlin1(self.norm1(self.conv1(skip))))
        return out, out


class CORblock_RT(CORblock_R):
    """CORnet-RT's block: the same computation as CORnet-R's."""


class _CORnetRecurrent(nn.Module):
    """V1 to IT run 5 time steps, unrolled (no TorchScript loop, so every call can be tapped);
    subclasses define `_step`, which block outputs one time step reads."""

    def __init__(self, block: type, times: int = 5):
        super().__init__()
        if times != 5:
            raise ValueError(f"CORnet-R/RT are unrolled for the published 5 time steps, not {times}")
        self.times = times
        self.V1 = block(3, 64, kernel_size=7, stride=4)
        self.V2 = block(64, 128, stride=2)
        self.V4 = block(128, 256, stride=2)
        self.IT = block(256, 512, stride=2)
        self.decoder = _decoder(with_output=False)

    def _first_step(self, inp: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        v1 = self.V1(inp)[0]
        v2 = self.V2(v1, None, True)[0]
        v4 = self.V4(v2, None, True)[0]
        it = self.IT(v4, None, True)[0]
        return v1, v2, v4, it

    def forward(self, inp: Tensor) -> Tensor:
        v1, v2, v4, it = self._first_step(inp)
        v1, v2, v4, it = self._step(inp, v1, v2, v4, it)  # t = 1
        v1, v2, v4, it = self._step(inp, v1, v2, v4, it)  # t = 2
        v1, v2, v4, it = self._step(inp, v1, v2, v4, it)  # t = 3
        v1, v2, v4, it = self._step(inp, v1, v2, v4, it)  # t = 4
        return self.decoder(it)


class CORnet_R(_CORnetRecurrent):
    """CORnet-R: within a time step each block reads the output of the block below at this step."""

    def __init__(self, times: int = 5):
        super().__init__(CORblock_R, times)

    def _step(self, inp: Tensor, v1: Tensor, v2: Tensor, v4: Tensor,
              it: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        v1 = self.V1(inp, v1)[0]
        v2 = self.V2(v1, v2)[0]
        v4 = self.V4(v2, v4)[0]
        it = self.IT(v4, it)[0]
        return v1, v2, v4, it


class CORnet_RT(_CORnetRecurrent):
    """CORnet-RT: within a time step each block reads the output of the block below at the
    previous step (biologically unrolled)."""

    def __init__(self, times: int = 5):
        super().__init__(CORblock_RT, times)

    def _step(self, inp: Tensor, v1: Tensor, v2: Tensor, v4: Tensor,
              it: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        new_v1 = self.V1(inp, v1)[0]
        new_v2 = self.V2(v1, v2)[0]
        new_v4 = self.V4(v2, v4)[0]
        new_it = self.IT(v4, it)[0]
        return new_v1, new_v2, new_v4, new_it


def cornet_r(times: int = 5) -> CORnet_R:
    """CORnet-R with the published 5 time steps (PyTorch's default initialisation, as the official
    code)."""
    return CORnet_R(times)


def cornet_rt(times: int = 5) -> CORnet_RT:
    """CORnet-RT with the published 5 time steps."""
    return CORnet_RT(times)


# ---------------------------------------------------------------------------------------- CORnet-S
class StepConv2d(nn.Conv2d):
    """A Conv2d whose stride is an argument of forward (CORnet-S's conv2: 2 at t=0, then 1)."""

    def forward(self, x: Tensor, stride: int = 1) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, [stride, stride], self.padding, self.dilation,
                        self.groups)


class CORblock_S(nn.Module):
    """Recurrent bottleneck block; its inner modules run `times` times, with one set of
    BatchNorms per time step (norm1_t, norm2_t, norm3_t). Supports times <= 4."""

    scale = 4

    def __init__(self, in_channels: int, out_channels: int, times: int = 1):
        super().__init__()
        if not 1 <= times <= 4:
            raise ValueError(f"CORblock_S supports 1 to 4 time steps, not {times}")
        self.times = times
        c, wide = out_channels, out_channels * self.scale
        self.conv_input = nn.Conv2d(in_channels, c, kernel_size=1, bias=False)
        self.skip = nn.Conv2d(c, c, kernel_size=1, stride=2, bias=False)
        self.norm_skip = nn.BatchNorm2d(c)
        self.conv1 = nn.Conv2d(c, wide, kernel_size=1, bias=False)
        self.nonlin1 = nn.ReLU(inplace=True)
        self.conv2 = StepConv2d(wide, wide, kernel_size=3, stride=2, padding=1, bias=False)
        self.nonlin2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(wide, c, kernel_size=1, bias=False)
        self.nonlin3 = nn.ReLU(inplace=True)
        self.output = Identity()
        for t in range(times):
            setattr(self, f"norm1_{t}", nn.BatchNorm2d(wide))
            setattr(self, f"norm2_{t}", nn.BatchNorm2d(wide))
            setattr(self, f"norm3_{t}", nn.BatchNorm2d(c))

    # TorchScript cannot look a module up by a computed name, so the (at most 4) steps are spelled
    # out; hasattr() is resolved when the module is compiled.
    def forward(self, inp: Tensor) -> Tensor:
        x = self.conv_input(inp)
        skip = self.norm_skip(self.skip(x))
        x = self.nonlin1(self.norm1_0(self.conv1(x)))
        x = self.nonlin2(self.norm2_0(self.conv2(x, 2)))
        x = self.output(self.nonlin3(self.norm3_0(self.conv3(x)) + skip))
        if hasattr(self, "norm1_1"):
            skip = x
            x = self.nonlin1(self.norm1_1(self.conv1(x)))
            x = self.nonlin2(self.norm2_1(self.conv2(x, 1)))
            x = self.output(self.nonlin3(self.norm3_1(self.conv3(x)) + skip))
        if hasattr(self, "norm1_2"):
            skip = x
            x = self.nonlin1(self.norm1_2(self.conv1(x)))
            x = self.nonlin2(self.norm2_2(self.conv2(x, 1)))
            x = self.output(self.nonlin3(self.norm3_2(self.conv3(x)) + skip))
        if hasattr(self, "norm1_3"):
            skip = x
            x = self.nonlin1(self.norm1_3(self.conv1(x)))
            x = self.nonlin2(self.norm2_3(self.conv2(x, 1)))
            x = self.output(self.nonlin3(self.norm3_3(self.conv3(x)) + skip))
        return x


def cornet_s() -> nn.Sequential:
    """CORnet-S: a ResNet-like V1 and recurrent bottleneck blocks (2/4/2 steps for V2/V4/IT)."""
    import math
    model = nn.Sequential(OrderedDict([
        ("V1", nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)),
            ("norm1", nn.BatchNorm2d(64)),
            ("nonlin1", nn.ReLU(inplace=True)),
            ("pool", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ("conv2", nn.Conv2d(64, 64, kernel_size=3, stride=1, padding=1, bias=False)),
            ("norm2", nn.BatchNorm2d(64)),
            ("nonlin2", nn.ReLU(inplace=True)),
            ("output", Identity()),
        ]))),
        ("V2", CORblock_S(64, 128, times=2)),
        ("V4", CORblock_S(128, 256, times=4)),
        ("IT", CORblock_S(256, 512, times=2)),
        ("decoder", _decoder(with_output=True)),
    ]))
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


ARCHITECTURES = {"cornet_z": cornet_z, "cornet_r": cornet_r, "cornet_rt": cornet_rt,
                 "cornet_s": cornet_s}


def build(name: str) -> nn.Module:
    """The CORnet called `name` (cornet_z, cornet_r, cornet_rt, cornet_s), randomly initialised."""
    return ARCHITECTURES[name]()
