"""THINGSvision's MAE ViTs (ssl `mae-vit-base-p16`, `mae-vit-large-p16`, `mae-vit-huge-p14`):
timm's VisionTransformer (num_classes 0, LayerNorm eps 1e-6, qkv bias) whose forward_features
returns the CLS token after `norm`, as thingsvision/utils/models/mae/vit_mae.py builds them; module
names are timm's (`patch_embed.proj`, `blocks.N`, `norm`, `fc_norm`, `head`). Needs timm."""
from functools import partial
from typing import Optional

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

SIZES = {  # name -> (patch, embed dim, depth, heads)
    "mae-vit-base-p16": (16, 768, 12, 12),
    "mae-vit-large-p16": (16, 1024, 24, 16),
    "mae-vit-huge-p14": (14, 1280, 32, 16),
}


class MaeVisionTransformer(VisionTransformer):
    """timm's ViT whose forward_features returns the CLS token (written without super() so that
    it scripts)."""

    def forward_features(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None,
                         is_causal: bool = False) -> torch.Tensor:
        x = self.patch_embed(x)
        x = self._pos_embed(x)
        x = self.patch_drop(x)
        x = self.norm_pre(x)
        x = self.blocks(x)
        x = self.norm(x)
        return x[:, 0]


def build(name: str) -> nn.Module:
    patch, dim, depth, heads = SIZES[name]
    return MaeVisionTransformer(patch_size=patch, embed_dim=dim, depth=depth, num_heads=heads,
                                mlp_ratio=4, qkv_bias=True,
                                norm_layer=partial(nn.LayerNorm, eps=1e-6), num_classes=0,
                                drop_rate=0.0)
