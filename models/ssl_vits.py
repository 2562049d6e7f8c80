"""Vision transformers of the self-supervised models THINGSvision offers (source `ssl`), written here
so that they script and keep THINGSvision's module names and numbers:

- DINO ViT-S/B with patch 16 or 8 (`dino-vit-{small,base}-p{16,8}`): THINGSvision builds them with
  its copy of DINO's `vision_transformer.py` (thingsvision/utils/models/dino). Module names:
  `patch_embed.proj`, `pos_drop`, `blocks.N` (`norm1`, `attn` (`qkv`, `attn_drop`, `proj`,
  `proj_drop`; outputs (x, attention) like DINO's), `drop_path`, `norm2`, `mlp` (`fc1`, `act`,
  `fc2`, `drop`)), `norm`, `head`; forward returns the CLS token after `norm`.
- DINOv2 ViT-S/B/L/g with patch 14 (`dinov2-vit-{small,base,large,giant}-p14`): THINGSvision loads
  them from torch.hub (facebookresearch/dinov2, `dinov2_vit?14`: image size 518, layer scale 1.0,
  interpolate_offset 0.1, no antialias, SwiGLU for giant). Module names as DINOv2's
  `DinoVisionTransformer` with block_chunks=0: `patch_embed.proj`, `patch_embed.norm`, `blocks.N`
  (`norm1`, `attn`, `ls1`, `drop_path1`, `norm2`, `mlp` (`fc1`, `act`, `fc2`, `drop`; giant:
  `w12`, `w3`), `ls2`, `drop_path2`), `norm`, `head`; forward returns the CLS token after `norm`.

The position embeddings are resized as the originals resize them (bicubic with DINO's +0.1 scale
factor offset) when the image is not the native size. Both files' published checkpoints (plain state
dicts) load unchanged (`--state-dict`).
"""
import math
from typing import List, Tuple

import torch
from torch import nn


# ------------------------------------------------------------------------------------ DINO (v1)
class Mlp(nn.Module):
    """The MLP of DINO's and DINOv2's blocks (both repositories call it Mlp; the same layers)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.fc1(x)))
        return self.drop(self.fc2(x))


class DinoAttention(nn.Module):
    """DINO's attention: returns (output, attention weights)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = float((dim // num_heads) ** -0.5)
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = self.attn_drop(attn.softmax(dim=-1))
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(x)), attn


class DinoBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = DinoAttention(dim, num_heads)
        self.drop_path = nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.attn(self.norm1(x))
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class DinoPatchEmbed(nn.Module):
    def __init__(self, patch_size: int, dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoVisionTransformer(nn.Module):
    """DINO's ViT (num_classes 0: `head` is Identity); forward gives the CLS token after `norm`."""

    def __init__(self, patch_size: int, dim: int, depth: int, num_heads: int, img_size: int = 224):
        super().__init__()
        self.patch_size = patch_size
        num_patches = (img_size // patch_size) ** 2
        self.patch_embed = DinoPatchEmbed(patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        self.pos_drop = nn.Dropout(0.0)
        self.blocks = nn.ModuleList([DinoBlock(dim, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Identity()
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(_init_vit_weights)

    def interpolate_pos_encoding(self, x: torch.Tensor, w: int, h: int) -> torch.Tensor:
        npatch = x.shape[1] - 1
        n = self.pos_embed.shape[1] - 1
        if npatch == n and w == h:
            return self.pos_embed
        dim = x.shape[-1]
        side = math.sqrt(n)
        w0 = float(w // self.patch_size) + 0.1
        h0 = float(h // self.patch_size) + 0.1
        grid = self.pos_embed[:, 1:].reshape(1, int(side), int(side), dim).permute(0, 3, 1, 2)
        grid = nn.functional.interpolate(grid, scale_factor=[w0 / side, h0 / side], mode="bicubic",
                                         align_corners=False)
        grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat((self.pos_embed[:, 0].unsqueeze(0), grid), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, w, h = x.shape[0], x.shape[2], x.shape[3]
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)
        x = self.pos_drop(x + self.interpolate_pos_encoding(x, w, h))
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.head(x[:, 0])


def _init_vit_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0)
    elif isinstance(m, nn.LayerNorm):
        nn.init.constant_(m.bias, 0)
        nn.init.constant_(m.weight, 1.0)


# ------------------------------------------------------------------------------------ DINOv2
class LayerScale(nn.Module):
    def __init__(self, dim: int, init_values: float = 1.0):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Dinov2Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = float((dim // num_heads) ** -0.5)
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim, bias=True)
        self.proj_drop = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = self.attn_drop((q @ k.transpose(-2, -1)).softmax(dim=-1))
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(x))


class SwiGLUFFNFused(nn.Module):
    """DINOv2's SwiGLU feed-forward (ViT-g): hidden = ((4·dim·2/3) + 7) // 8 · 8."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(nn.functional.silu(x1) * x2)


class Dinov2Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, swiglu: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Dinov2Attention(dim, num_heads)
        self.ls1 = LayerScale(dim)
        self.drop_path1 = nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = SwiGLUFFNFused(dim, dim * 4) if swiglu else Mlp(dim, dim * 4)
        self.ls2 = LayerScale(dim)
        self.drop_path2 = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class Dinov2PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class Dinov2VisionTransformer(nn.Module):
    """DINOv2's DinoVisionTransformer as torch.hub's dinov2_vit?14 builds it (eval forward only)."""

    def __init__(self, dim: int, depth: int, num_heads: int, swiglu: bool = False,
                 patch_size: int = 14, img_size: int = 518):
        super().__init__()
        self.patch_size = patch_size
        self.interpolate_offset = 0.1
        num_patches = (img_size // patch_size) ** 2
        self.patch_embed = Dinov2PatchEmbed(patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.blocks = nn.ModuleList([Dinov2Block(dim, num_heads, swiglu) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Identity()
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        self.apply(_init_vit_weights)

    def interpolate_pos_encoding(self, x: torch.Tensor, w: int, h: int) -> torch.Tensor:
        npatch = x.shape[1] - 1
        n = self.pos_embed.shape[1] - 1
        if npatch == n and w == h:
            return self.pos_embed
        dim = x.shape[-1]
        m = int(math.sqrt(n))
        w0 = w // self.patch_size
        h0 = h // self.patch_size
        sx = float(w0 + self.interpolate_offset) / m
        sy = float(h0 + self.interpolate_offset) / m
        pos = self.pos_embed.float()
        grid = pos[:, 1:].reshape(1, m, m, dim).permute(0, 3, 1, 2)
        grid = nn.functional.interpolate(grid, scale_factor=[sx, sy], mode="bicubic",
                                         align_corners=False, antialias=False)
        grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat((pos[:, 0].unsqueeze(0), grid), dim=1).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, w, h = x.shape[0], x.shape[2], x.shape[3]
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)
        x = x + self.interpolate_pos_encoding(x, w, h)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.head(x[:, 0])


# ------------------------------------------------------------------------------------ registry
# THINGSvision name -> (builder kind, arguments, published checkpoint URL)
DINO_VITS = {
    "dino-vit-small-p16": (16, 384, 12, 6, "https://dl.fbaipublicfiles.com/dino/dino_deitsmall16_pretrain/dino_deitsmall16_pretrain.pth"),
    "dino-vit-small-p8": (8, 384, 12, 6, "https://dl.fbaipublicfiles.com/dino/dino_deitsmall8_pretrain/dino_deitsmall8_pretrain.pth"),
    "dino-vit-base-p16": (16, 768, 12, 12, "https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth"),
    "dino-vit-base-p8": (8, 768, 12, 12, "https://dl.fbaipublicfiles.com/dino/dino_vitbase8_pretrain/dino_vitbase8_pretrain.pth"),
}
DINOV2_VITS = {
    "dinov2-vit-small-p14": (384, 12, 6, False, "https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth"),
    "dinov2-vit-base-p14": (768, 12, 12, False, "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth"),
    "dinov2-vit-large-p14": (1024, 24, 16, False, "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth"),
    "dinov2-vit-giant-p14": (1536, 40, 24, True, "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitg14/dinov2_vitg14_pretrain.pth"),
}


def build(name: str) -> nn.Module:
    """The DINO or DINOv2 ViT `name` (a THINGSvision ssl name), randomly initialised."""
    if name in DINO_VITS:
        patch, dim, depth, heads, _ = DINO_VITS[name]
        return DinoVisionTransformer(patch, dim, depth, heads)
    dim, depth, heads, swiglu, _ = DINOV2_VITS[name]
    return Dinov2VisionTransformer(dim, depth, heads, swiglu)


def checkpoint_url(name: str) -> str:
    return (DINO_VITS.get(name) or DINOV2_VITS[name])[-1]


def names() -> List[str]:
    return list(DINO_VITS) + list(DINOV2_VITS)
