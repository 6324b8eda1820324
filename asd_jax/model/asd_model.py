"""The two-channel ASD model: shared LoRA encoder -> gated fusion -> pooling -> projection.

wave [B, 2, S] -> both channels through the encoder as one batch of 2B rows -> tokens
[B, 2, N, D] -> gated fusion [B, N, D] -> pooling -> Dense -> embedding [B, 256].
ArcFace cosine heads (attribute, domain) sit on the embedding during training only.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from asd_jax.audio import fbank as fbank_lib
from asd_jax.model.arcface import CosineHead
from asd_jax.model.fusion import AttentiveStatisticsPooling, GatedFusion, mean_pooling


class ASDModel(nn.Module):
  encoder: nn.Module  # BEATs or AudioMAEEncoder, built with the LoRA config
  preset: fbank_lib.FbankPreset  # the encoder's own front end
  num_mel_bins: int
  num_attributes: int
  num_domains: int = 2
  embed_dim: int = 256
  pooling: str = 'mean'  # 'mean' or 'attentive' (attentive statistics pooling)
  gate_bias_init: float = 1.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, wave, deterministic: bool = True):
    """Returns {'embedding' [B, E], 'gate' [B, N], 'attribute_cos' [B, A], 'domain_cos'}."""
    batch, channels, samples = wave.shape
    features = fbank_lib.encoder_fbank(wave.reshape(batch * channels, samples), self.preset,
                                       self.num_mel_bins)
    tokens = self.encoder(features, deterministic=deterministic)
    tokens = tokens.reshape(batch, channels, *tokens.shape[1:])
    fused, gate = GatedFusion(self.gate_bias_init, name='fusion')(tokens)
    if self.pooling == 'mean':
      pooled = mean_pooling(fused)
    elif self.pooling == 'attentive':
      pooled = AttentiveStatisticsPooling(name='pooling')(fused)
    else:
      raise ValueError(f'unknown pooling {self.pooling!r}; expected mean or attentive')
    embedding = nn.Dense(self.embed_dim, name='projection')(pooled.astype(jnp.float32))
    return {
        'embedding': embedding,
        'gate': gate,
        'attribute_cos': CosineHead(max(self.num_attributes, 1), name='attribute_head')(embedding),
        'domain_cos': CosineHead(self.num_domains, name='domain_head')(embedding),
    }
