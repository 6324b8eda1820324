"""AudioMAE (Huang et al., 2022) encoder in Flax: a timm ViT-B/16 over a 1024×128 fbank.

fbank [B, 1024, 128] -> patch embedding with bias (time-major, 512 tokens) + stored pos_embed
(a fixed sin-cos table built on the pre-training grid: loaded, never recomputed) -> cls token
prepended -> pre-LN blocks -> final norm (pretrained files) -> tokens [B, 513, D], cls first.
Fine-tuned files have no final norm; `classify=True` returns head(fc_norm(mean patch token)).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from asd_jax.encoders.config import AudioMAEConfig, LoRAConfig
from asd_jax.encoders.layers import (EncoderModule, PatchEmbed, attend, gelu, layer_stack,
                                     split_heads)
from asd_jax.encoders.lora import LoRADense


class ViTBlock(nn.Module):
  """timm Block: x += Attn(LN(x)); x += MLP(LN(x)).  Fused qkv is split into q, k, v at
  conversion so LoRA can target q and v separately.  [B, N, D] -> [B, N, D]."""
  config: AudioMAEConfig
  lora: LoRAConfig | None
  deterministic: bool
  dtype: Any = jnp.float32
  attention: str = 'matmul'  # layers.ATTENTION

  @nn.compact
  def __call__(self, x, _):
    c = self.config
    eps = c.layer_norm_eps

    def dense(name, features):
      adapted = self.lora if (self.lora is not None and name in self.lora.targets) else None
      return LoRADense(features, adapted, dtype=self.dtype, name=name)

    h = nn.LayerNorm(eps, name='norm1')(x)
    q, k, v = (split_heads(dense(n, c.embed_dim)(h, self.deterministic), c.num_heads)
               for n in ('q', 'k', 'v'))
    x = x + dense('out', c.embed_dim)(attend(q, k, v, attention=self.attention),
                                      self.deterministic)
    h = nn.LayerNorm(eps, name='norm2')(x)
    h = dense('fc2', c.embed_dim)(gelu(dense('fc1', c.mlp_dim)(h, self.deterministic)),
                                  self.deterministic)
    return (x + h).astype(self.dtype), None


class AudioMAEEncoder(EncoderModule):
  """fbank [B, 1024, 128] -> tokens [B, 1 + 512, D] (pretrained: after the final norm).
  config: AudioMAEConfig."""

  @nn.compact
  def __call__(self, fbank, deterministic: bool = True, classify: bool = False):
    c = self.config
    x = PatchEmbed(c.embed_dim, c.patch_size, True, self.dtype, name='patch_embed')(fbank)
    pos_embed = self.param('pos_embed', nn.initializers.normal(0.02),
                           (1, 1 + c.num_patches, c.embed_dim))
    cls_token = self.param('cls_token', nn.initializers.normal(0.02), (1, 1, c.embed_dim))
    x = x + pos_embed[:, 1:]
    cls = jnp.broadcast_to(cls_token + pos_embed[:, :1], (x.shape[0], 1, c.embed_dim))
    x = jnp.concatenate([cls.astype(x.dtype), x], axis=1)
    blocks = layer_stack(ViTBlock, self.remat, c.depth)
    x, _ = blocks(c, self.lora, deterministic, self.dtype, self.attention, name='blocks')(
        x.astype(self.dtype), None)
    if c.finetuned:
      if classify:
        pooled = nn.LayerNorm(c.layer_norm_eps, name='fc_norm')(x[:, 1:].mean(axis=1))
        return nn.Dense(c.num_classes, name='head')(pooled.astype(jnp.float32))
      return x
    if classify:
      raise ValueError('classify needs a fine-tuned AudioMAE checkpoint (this one is pretrained)')
    return nn.LayerNorm(c.layer_norm_eps, name='norm')(x)
