"""Dual-channel gated fusion and pooling (report §3.4)."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class GatedFusion(nn.Module):
  """α_t = σ(W_g[h1_t; h2_t] + b_g), h_t = α_t·h1_t + (1 − α_t)·h2_t, one scalar per token.

  h1 = near field (channel 0), h2 = far field. W_g starts at zero and b_g at `bias_init`, so
  every token starts at α = σ(1.0) = 0.73, the report's moderate preference for the near field
  (a random W_g would instead start each token at a random α: with LayerNormed tokens,
  W_g·[h1; h2] has a standard deviation near 1).
  tokens [B, 2, N, D] -> (fused [B, N, D], gate [B, N]).
  """
  bias_init: float = 1.0

  @nn.compact
  def __call__(self, tokens):
    near, far = tokens[:, 0], tokens[:, 1]
    logit = nn.Dense(1, kernel_init=nn.initializers.zeros,
                     bias_init=nn.initializers.constant(self.bias_init), name='gate')(
        jnp.concatenate([near, far], axis=-1))[..., 0]
    gate = jax.nn.sigmoid(logit.astype(jnp.float32)).astype(tokens.dtype)
    return gated_mix(gate, tokens), gate


def gated_mix(gate, pair):
  """gate [B, N], pair [B, 2, N, F] -> α·pair[:, 0] + (1 − α)·pair[:, 1], [B, N, F]: how the
  gate mixes the near and far channel's tokens."""
  return gate[..., None] * pair[:, 0] + (1 - gate[..., None]) * pair[:, 1]


def mean_pooling(x):
  """[B, N, D] -> [B, D]."""
  return x.mean(axis=1)


def frequency_row_pooling(x, rows: int, leading: int = 0):
  """[B, leading + T·rows, D] -> [B, rows·2D]: mean and standard deviation over time of each
  row of frequency patches (tokens time-major, n = t·rows + f, after `leading` tokens such as a
  cls token, which are left out). BEATs has no absolute position embedding, so a mean over every
  token mixes the frequency bands; keeping one pair of statistics per band row does not."""
  batch, _, dim = x.shape
  grid = x[:, leading:].reshape(batch, -1, rows, dim)
  return mean_and_std(grid).reshape(batch, -1)


def row_gate(gate, rows: int):
  """gate [B, N] over the square-patch grid (time-major, `rows` patch rows) -> [B, rows]: each
  patch row's gate averaged over time."""
  return gate.reshape(gate.shape[0], -1, rows).mean(axis=1)


def mean_and_std(x, where=None):
  """[B, N, ...] -> [B, ..., 2·last]: mean and standard deviation (floored at 1e-3) over axis 1,
  concatenated along the last axis; over the entries where `where` (broadcast to x) is True
  if given."""
  mean = x.mean(axis=1, where=where)
  var = jnp.mean(jnp.square(x - mean[:, None]), axis=1, where=where)
  return jnp.concatenate([mean, jnp.sqrt(jnp.maximum(var, 1e-6))], axis=-1)
