"""The two-channel ASD model: shared LoRA encoder -> gated fusion -> pooling -> projection.

wave [B, 2, S] -> both channels through the encoder as one batch of 2B rows -> tokens
[B, 2, N, D] -> gated fusion [B, N, D] -> pooling -> Dense -> embedding [B, 256].
ArcFace cosine heads (attribute, domain) sit on the embedding during training only.
The banks read from whole clips beside the embedding (scoring/clip_banks.py) take the model's
gate per patch row, 'row_gate'; the model computes nothing else for them.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from asd_jax.audio import fbank as fbank_lib
from asd_jax.model.arcface import CosineHead
from asd_jax.model.fusion import GatedFusion, frequency_row_pooling, mean_pooling, row_gate

# The report's mean over every token; mean + std over time per row of frequency patches.
POOLINGS = ('mean', 'frequency_rows')
# How a clip's channels reach the model at inference (report §6): both, or the near channel
# fed to both inputs ('embedding_left_duplicated').
TWO_CHANNEL, LEFT_DUPLICATED = 'two_channel', 'left_duplicated'
CHANNEL_MODES = (TWO_CHANNEL, LEFT_DUPLICATED)


class ASDModel(nn.Module):
  encoder: nn.Module  # BEATs or AudioMAEEncoder, built with the LoRA config
  preset: fbank_lib.FbankPreset  # the encoder's own front end
  num_mel_bins: int
  num_attributes: int
  num_domains: int = 2
  embed_dim: int = 256
  pooling: str = 'mean'  # one of POOLINGS
  frequency_rows: int = 8  # patch rows along frequency
  leading_tokens: int = 0  # tokens before the patch grid (AudioMAE's cls token)
  gate_bias_init: float = 1.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, wave, deterministic: bool = True, left_duplicated: bool = False):
    """Returns {'embedding' [B, E], 'gate' [B, N], 'row_gate' [B, rows] (the gate over the patch
    grid averaged over time per row of frequency patches), 'attribute_cos' [B, A],
    'domain_cos' [B, 2]}.

    left_duplicated=True adds 'embedding_left_duplicated': the embedding the same wave would get
    with its near channel fed to both inputs, from the near tokens already computed (the encoder
    is per row, so this is the left-duplicated embedding at half the encoder work).
    """
    batch, channels, samples = wave.shape
    features = fbank_lib.encoder_fbank(wave.reshape(batch * channels, samples), self.preset,
                                       self.num_mel_bins)
    tokens = self.encoder(features, deterministic=deterministic)
    tokens = tokens.reshape(batch, channels, *tokens.shape[1:])
    fusion = GatedFusion(self.gate_bias_init, name='fusion')
    if self.pooling == 'mean':
      pool = mean_pooling
    elif self.pooling == 'frequency_rows':
      pool = lambda x: frequency_row_pooling(x, self.frequency_rows, self.leading_tokens)
    else:
      raise ValueError(f'unknown pooling {self.pooling!r}; expected one of {POOLINGS}')
    projection = nn.Dense(self.embed_dim, name='projection')

    def embed(channel_tokens):
      fused, gate = fusion(channel_tokens)
      return projection(pool(fused).astype(jnp.float32)), gate

    embedding, gate = embed(tokens)
    out = {
        'embedding': embedding,
        'gate': gate,
        'row_gate': row_gate(gate[:, self.leading_tokens:].astype(jnp.float32),
                             self.frequency_rows),
        'attribute_cos': CosineHead(max(self.num_attributes, 1), name='attribute_head')(embedding),
        'domain_cos': CosineHead(self.num_domains, name='domain_head')(embedding),
    }
    if left_duplicated:
      near = tokens[:, :1]
      out['embedding_left_duplicated'] = embed(jnp.concatenate([near, near], axis=1))[0]
    return out
