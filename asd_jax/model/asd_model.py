"""The two-channel ASD model: shared LoRA encoder -> gated fusion -> pooling -> projection.

wave [B, 2, S] -> both channels through the encoder as one batch of 2B rows -> tokens
[B, 2, N, D] -> gated fusion [B, N, D] -> pooling -> Dense -> embedding [B, 256].
ArcFace cosine heads (attribute, domain) sit on the embedding during training only.
With patch_level (BEATs only), a second output keeps what the encoder's first LayerNorm takes
away: each patch's level, fused with the same gate and pooled per frequency row, [B, rows·4];
with patch_embedding, a third: the whole patch embedding before that LayerNorm, pooled the same
way and projected to [B, E]; with fbank_level, the level read from the encoder's input itself:
mean and standard deviation over time of each band of FBANK_BAND_BINS mel bins, the channels
mixed by the same gate, [B, 2·bins/FBANK_BAND_BINS] (with fbank_level_span='clip' the embed
stage reads it from the whole clip instead, and the model gives it each patch row's gate
averaged over time, 'fbank_row_gate' [B, rows]); with fbank_modulation, how fast those bands
move: their log power in each modulation band of MODULATION_EDGES_HZ, averaged per patch row,
[B, rows·6]. With logmel_level the embed stage alone adds a bank, the near channel's log-mel
statistics over the whole clip (embed.clip_logmel_levels); the model computes nothing for it.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from asd_jax.audio import fbank as fbank_lib
from asd_jax.encoders.beats import patch_level
from asd_jax.model.arcface import CosineHead
from asd_jax.model.fusion import (AttentiveStatisticsPooling, GatedFusion, fbank_band_level,
                                  fbank_band_modulation, frequency_row_pooling, gated_mix,
                                  mean_pooling, mean_std_pooling, row_gate)

# mean; mean + std; attentive statistics; mean + std over time per row of frequency patches
POOLINGS = ('mean', 'meanstd', 'attentive', 'frequency_rows')
# Mel bins per band of the fbank level: four bands to a 16-bin patch row (2, 4 and 8 were within
# 0.15 points of each other on seed 0 of held-out A-J; docs/heldout.md, "Fbank level").
FBANK_BAND_BINS = 4
# Where the fbank level is read: the model's crops, or the whole clip (by the embed stage).
FBANK_LEVEL_SPANS = ('crops', 'clip')
# Modulation bands (Hz) of model.fbank_modulation: octaves from 0.5 Hz up to the 50-Hz Nyquist
# rate of the fbank's 10-ms frames (a 2-s crop resolves 0.52 Hz).
MODULATION_EDGES_HZ = (0.5, 2.0, 4.0, 8.0, 16.0, 32.0, 50.0)


class ASDModel(nn.Module):
  encoder: nn.Module  # BEATs or AudioMAEEncoder, built with the LoRA config
  preset: fbank_lib.FbankPreset  # the encoder's own front end
  num_mel_bins: int
  num_attributes: int
  num_domains: int = 2
  embed_dim: int = 256
  pooling: str = 'mean'  # one of POOLINGS
  frequency_rows: int = 8  # patch rows along frequency ('frequency_rows' pooling)
  leading_tokens: int = 0  # tokens before the patch grid (AudioMAE's cls token)
  gate_bias_init: float = 1.0
  patch_level: bool = False  # also output the pooled patch level (BEATs: patch_embeddings)
  patch_embedding: bool = False  # also output the pooled patch embedding, projected (BEATs)
  fbank_level: bool = False  # also output the band level of the encoder's input fbank
  fbank_level_span: str = 'crops'  # one of FBANK_LEVEL_SPANS
  fbank_modulation: bool = False  # also output the bands' modulation spectrum (BEATs)
  logmel_level: bool = False  # the embed stage also reads the clip's log-mel level (BEATs)
  dtype: Any = jnp.float32

  @property
  def level_over_clip(self) -> bool:
    """Whether the embed stage, not the model, reads the fbank level (over the whole clip)."""
    return self.fbank_level and self.fbank_level_span == 'clip'

  @property
  def read_from_whole_clips(self) -> tuple[str, ...]:
    """The outputs the embed stage reads from whole clips instead of taking from the model."""
    names = ['fbank_level'] if self.level_over_clip else []
    return tuple(names + ['logmel_level'] if self.logmel_level else names)

  @nn.compact
  def __call__(self, wave, deterministic: bool = True, left_duplicated: bool = False):
    """Returns {'embedding' [B, E], 'gate' [B, N], 'attribute_cos' [B, A], 'domain_cos'}, and
    'patch_level' [B, rows·4] with patch_level=True, and 'patch_embedding' [B, E] (the patch
    embeddings before the first LayerNorm, pooled per frequency row, projected at random to E)
    with patch_embedding=True, and 'fbank_level' [B, 2·bins/FBANK_BAND_BINS] with fbank_level=True,
    and 'fbank_modulation' [B, rows·6] with fbank_modulation=True; with fbank_level_span='clip',
    'fbank_row_gate' [B, rows] in place of 'fbank_level' (which the embed stage then reads from
    the whole clip).

    left_duplicated=True adds 'embedding_left_duplicated': the embedding the same wave would get
    with its near channel fed to both inputs, from the near tokens already computed (the encoder
    is per row, so this is the left-duplicated embedding at half the encoder work), and
    'patch_level_left_duplicated', 'patch_embedding_left_duplicated',
    'fbank_level_left_duplicated' and 'fbank_modulation_left_duplicated' likewise.
    """
    batch, channels, samples = wave.shape
    features = fbank_lib.encoder_fbank(wave.reshape(batch * channels, samples), self.preset,
                                       self.num_mel_bins)
    patches = None
    if self.patch_level or self.patch_embedding:
      tokens, patches = self.encoder(features, deterministic=deterministic, patch_embeddings=True)
      patches = patches.reshape(batch, channels, *patches.shape[1:])
    else:
      tokens = self.encoder(features, deterministic=deterministic)
    tokens = tokens.reshape(batch, channels, *tokens.shape[1:])
    fusion = GatedFusion(self.gate_bias_init, name='fusion')
    if self.pooling == 'mean':
      pool = mean_pooling
    elif self.pooling == 'meanstd':
      pool = mean_std_pooling
    elif self.pooling == 'attentive':
      pool = AttentiveStatisticsPooling(name='pooling')
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
        'attribute_cos': CosineHead(max(self.num_attributes, 1), name='attribute_head')(embedding),
        'domain_cos': CosineHead(self.num_domains, name='domain_head')(embedding),
    }
    if left_duplicated:
      near = tokens[:, :1]
      out['embedding_left_duplicated'] = embed(jnp.concatenate([near, near], axis=1))[0]
    rows = lambda x: frequency_row_pooling(x, self.frequency_rows, self.leading_tokens)
    extra = {}  # output name -> per-channel [B, 2, N, F] values, pooled per row like the tokens
    if self.patch_level:
      extra['patch_level'] = (patch_level(patches), lambda pooled: pooled)
    if self.patch_embedding:
      extra['patch_embedding'] = (patches, nn.Dense(self.embed_dim, name='patch_projection'))
    for name, (values, finish) in extra.items():
      out[name] = finish(rows(gated_mix(gate.astype(jnp.float32), values)))
      if left_duplicated:
        out[f'{name}_left_duplicated'] = finish(rows(values[:, 0]))
    pair = features.reshape(batch, channels, *features.shape[1:]).astype(jnp.float32)
    grid_gate = gate[:, self.leading_tokens:].astype(jnp.float32)
    read_from_fbank = {}  # output name -> function of the gate over the patch grid
    if self.level_over_clip:
      out['fbank_row_gate'] = row_gate(grid_gate, self.frequency_rows)
    elif self.fbank_level:
      read_from_fbank['fbank_level'] = lambda g: fbank_band_level(
          pair, g, self.frequency_rows, FBANK_BAND_BINS)
    if self.fbank_modulation:
      read_from_fbank['fbank_modulation'] = lambda g: fbank_band_modulation(
          pair, g, self.frequency_rows, FBANK_BAND_BINS,
          fbank_lib.SAMPLE_RATE / fbank_lib.FRAME_SHIFT, MODULATION_EDGES_HZ)
    for name, read in read_from_fbank.items():
      out[name] = read(grid_gate)
      if left_duplicated:  # the near channel alone: a gate of one everywhere
        out[f'{name}_left_duplicated'] = read(jnp.ones_like(grid_gate))
    return out
