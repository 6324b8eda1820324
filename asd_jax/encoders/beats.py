"""BEATs (Chen et al., 2023) in Flax, faithful to microsoft/unilm `beats/`.

fbank [B, T, 128] -> patch embedding (16×16, time-major tokens) -> LayerNorm -> Linear to the
encoder width -> + GELU(weight-normed grouped conv positional embedding) -> LayerNorm ->
post-LN DeepNorm layers with a T5-style relative position bias that is computed once from
layer 0's table and gated per layer by the query (gru_rel_pos) -> tokens [B, N, D].
Layers are scanned (one compiled body, parameters stacked on a leading layer axis).
"""
from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from asd_jax.encoders.config import BeatsConfig, LoRAConfig
from asd_jax.encoders.layers import (EncoderModule, PatchEmbed, attend, gelu, layer_stack,
                                     split_heads)
from asd_jax.encoders.lora import LoRADense

LN_EPS = 1e-5


def relative_position_buckets(length: int, num_buckets: int, max_distance: int) -> np.ndarray:
  """Bidirectional T5 buckets of rel = key − query, [length, length] int32.

  Half the buckets per sign; |rel| below a quarter of the buckets is exact, larger distances are
  log-spaced up to max_distance and clipped to the last bucket. Evaluated in float32 like the
  reference, so bucket edges agree exactly.
  """
  rel = np.arange(length)[None, :] - np.arange(length)[:, None]
  half = num_buckets // 2
  buckets = (rel > 0).astype(np.int64) * half
  distance = np.abs(rel)
  max_exact = half // 2
  with np.errstate(divide='ignore'):
    log_ratio = np.log(distance.astype(np.float32) / np.float32(max_exact))
  large = max_exact + (log_ratio / np.float32(math.log(max_distance / max_exact))
                       * np.float32(half - max_exact))
  large = np.where(distance < max_exact, 0, large).astype(np.int64)
  large = np.minimum(large, half - 1)
  return (buckets + np.where(distance < max_exact, distance, large)).astype(np.int32)


class ConvPositionalEmbedding(nn.Module):
  """GELU(grouped Conv1d(k, pad k//2)) over tokens, last step dropped for even k (SamePad)."""
  width: int
  kernel_size: int
  groups: int

  @nn.compact
  def __call__(self, x):  # [B, N, D]
    pad = self.kernel_size // 2
    y = nn.Conv(self.width, (self.kernel_size,), padding=[(pad, pad)],
                feature_group_count=self.groups, name='conv')(x)
    if self.kernel_size % 2 == 0:
      y = y[:, :-1]
    return gelu(y)


class BeatsLayer(nn.Module):
  """One post-LN DeepNorm block: x = LN(α·x + Attn(x)); x = LN(α·x + FFN(x)).  [B, N, D]."""
  config: BeatsConfig
  lora: LoRAConfig | None
  deterministic: bool
  dtype: Any = jnp.float32
  attention: str = 'matmul'  # layers.ATTENTION

  def _targets(self, name):
    return self.lora if (self.lora is not None and name in self.lora.targets) else None

  @nn.compact
  def __call__(self, x, pos_bias):
    c = self.config
    heads = c.encoder_attention_heads
    dense = lambda name, features: LoRADense(features, self._targets(name), dtype=self.dtype,
                                             name=name)
    q = split_heads(dense('q', c.width)(x, self.deterministic), heads)
    k = split_heads(dense('k', c.width)(x, self.deterministic), heads)
    v = split_heads(dense('v', c.width)(x, self.deterministic), heads)
    gate = None
    if pos_bias is not None and c.gru_rel_pos:
      gate_logits = nn.Dense(8, name='grep_linear', dtype=self.dtype)(q)  # [B, N, H, 8]
      grep_a = self.param('grep_a', nn.initializers.ones, (heads,))
      with jax.named_scope('relative_position_bias'):
        g = jax.nn.sigmoid(gate_logits.reshape(*gate_logits.shape[:-1], 2, 4).sum(-1)
                           .astype(jnp.float32))
        gate = (g[..., 0] * (g[..., 1] * grep_a - 1.0) + 2.0).transpose(0, 2, 1)  # [B, H, N]
    drop = nn.Dropout(c.dropout)
    dropout = 0.0 if self.deterministic else c.attention_dropout
    h = attend(q, k, v, pos_bias, gate, dropout,
               self.make_rng('dropout') if dropout else None, self.attention)
    h = dense('out', c.width)(h, self.deterministic)
    h = drop(h, deterministic=self.deterministic)
    alpha = c.deep_norm_alpha
    x = nn.LayerNorm(LN_EPS, name='self_attn_layer_norm')(x * alpha + h)
    h = gelu(dense('fc1', c.encoder_ffn_embed_dim)(x, self.deterministic))
    h = dense('fc2', c.width)(h, self.deterministic)
    h = drop(h, deterministic=self.deterministic)
    x = nn.LayerNorm(LN_EPS, name='final_layer_norm')(x * alpha + h)
    return x.astype(self.dtype), None


class BEATs(EncoderModule):
  """BEATs backbone (+ fine-tuned predictor).  fbank [B, T, mel] -> tokens [B, 8·⌊T/16⌋, D].
  config: BeatsConfig."""

  @nn.compact
  def __call__(self, fbank, deterministic: bool = True, classify: bool = False):
    """Backbone tokens; with classify=True (fine-tuned files) the class probabilities instead:
    sigmoid of the token-averaged predictor logits, as the official extract_features."""
    c = self.config
    x = PatchEmbed(c.embed_dim, c.input_patch_size, c.conv_bias, self.dtype,
                   name='patch_embedding')(fbank)
    x = nn.LayerNorm(LN_EPS, name='layer_norm')(x)
    if c.embed_dim != c.encoder_embed_dim:
      x = nn.Dense(c.encoder_embed_dim, name='post_extract_proj', dtype=self.dtype)(x)
    x = x + ConvPositionalEmbedding(c.width, c.conv_pos, c.conv_pos_groups,
                                    name='pos_conv')(x)
    x = nn.LayerNorm(LN_EPS, name='encoder_layer_norm')(x)
    x = nn.Dropout(c.dropout)(x, deterministic=deterministic)
    pos_bias = None
    if c.relative_position_embedding:
      table = self.param('relative_attention_bias', nn.initializers.normal(0.02),
                         (c.num_buckets, c.encoder_attention_heads))
      buckets = relative_position_buckets(x.shape[1], c.num_buckets, c.max_distance)
      with jax.named_scope('relative_position_bias'):
        pos_bias = jnp.transpose(table[buckets], (2, 0, 1)).astype(jnp.float32)  # [H, N, N]
    layers = layer_stack(BeatsLayer, self.remat, c.encoder_layers)
    x, _ = layers(c, self.lora, deterministic, self.dtype, self.attention, name='layers')(
        x.astype(self.dtype), pos_bias)
    if classify:
      if not c.finetuned_model:
        raise ValueError('classify needs a fine-tuned BEATs checkpoint (this one has no predictor)')
      logits = nn.Dense(c.predictor_class, name='predictor')(x.astype(jnp.float32))
      return jax.nn.sigmoid(logits.mean(axis=1))
    return x
