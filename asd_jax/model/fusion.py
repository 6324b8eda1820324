"""Dual-channel gated fusion and pooling (report §3.4)."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


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
  gate mixes the near and far channel's tokens (and, with model.patch_level, their levels)."""
  return gate[..., None] * pair[:, 0] + (1 - gate[..., None]) * pair[:, 1]


class AttentiveStatisticsPooling(nn.Module):
  """Attention-weighted mean and standard deviation over tokens.  [B, N, D] -> [B, 2D]."""
  hidden: int = 128

  @nn.compact
  def __call__(self, x):
    scores = nn.Dense(1, name='score')(jnp.tanh(nn.Dense(self.hidden, name='attention')(x)))
    weights = jax.nn.softmax(scores.astype(jnp.float32), axis=1).astype(x.dtype)
    mean = jnp.sum(weights * x, axis=1)
    var = jnp.sum(weights * (x - mean[:, None])**2, axis=1)
    return jnp.concatenate([mean, jnp.sqrt(jnp.maximum(var, 1e-6))], axis=-1)


def mean_pooling(x):
  """[B, N, D] -> [B, D]."""
  return x.mean(axis=1)


def mean_std_pooling(x):
  """[B, N, D] -> [B, 2D]: mean and standard deviation over tokens. The spread keeps how much
  each feature varies over time and frequency, which the mean alone averages away."""
  return _mean_and_std_over_axis_1(x)


def frequency_row_pooling(x, rows: int, leading: int = 0):
  """[B, leading + T·rows, D] -> [B, rows·2D]: mean and standard deviation over time of each
  row of frequency patches (tokens time-major, n = t·rows + f, after `leading` tokens such as a
  cls token, which are left out). BEATs has no absolute position embedding, so a mean over every
  token mixes the frequency bands; keeping one pair of statistics per band row does not."""
  batch, _, dim = x.shape
  grid = x[:, leading:].reshape(batch, -1, rows, dim)
  return _mean_and_std_over_axis_1(grid).reshape(batch, -1)


def gated_fbank_bands(fbank_pair, gate, rows: int, band_bins: int):
  """fbank_pair [B, 2, T, M] (each channel's encoder input), gate [B, N] over the encoder's
  square-patch grid (time-major, `rows` patch rows along frequency) -> [B, frames, M/band_bins]:
  each band of `band_bins` mel bins, the two channels mixed by the gate of the patch each frame
  and band fall in. Frames past the last whole patch, which the encoder drops, are dropped here
  too."""
  batch, _, frames, bins = fbank_pair.shape
  patch = bins // rows
  steps = gate.shape[1] // rows
  if band_bins <= 0 or patch % band_bins or steps * patch > frames:
    raise ValueError(f'{band_bins}-bin bands do not tile the {patch}-bin patches of a '
                     f'{frames}x{bins} fbank with {gate.shape[1]} patches')
  bands = fbank_pair[:, :, :steps * patch].reshape(batch, 2, steps * patch, bins // band_bins,
                                                   band_bins).mean(-1)
  per_frame = jnp.repeat(jnp.repeat(gate.reshape(batch, steps, rows), patch, axis=1),
                         patch // band_bins, axis=2)  # [B, frames, bands]
  return per_frame * bands[:, 0] + (1 - per_frame) * bands[:, 1]


def fbank_band_level(fbank_pair, gate, rows: int, band_bins: int):
  """[B, 2·M/band_bins]: mean and standard deviation over time of each gated band
  (gated_fbank_bands). The level is read from the fbank itself, so no pre-training of the
  encoder can change it."""
  return _mean_and_std_over_axis_1(gated_fbank_bands(fbank_pair, gate, rows, band_bins))


def row_gate(gate, rows: int):
  """gate [B, N] over the square-patch grid (time-major, `rows` patch rows) -> [B, rows]: each
  patch row's gate averaged over time."""
  return gate.reshape(gate.shape[0], -1, rows).mean(axis=1)


def clip_fbank_band_level(fbank_pair, gate_of_row, band_bins: int):
  """fbank_pair [B, 2, T, M] of whole clips, gate_of_row [B, rows] -> [B, 2·M/band_bins]: the
  band level of fbank_band_level over every whole patch of the clip, each band's channels mixed
  by its patch row's gate. The model sees crops, so its gate reaches the whole clip only as one
  value a row."""
  rows = gate_of_row.shape[1]
  steps = fbank_pair.shape[2] // (fbank_pair.shape[3] // rows)
  return fbank_band_level(fbank_pair, jnp.tile(gate_of_row, (1, steps)), rows, band_bins)


def fbank_band_modulation(fbank_pair, gate, rows: int, band_bins: int, frame_rate: float,
                          edges_hz) -> jnp.ndarray:
  """[B, rows·(len(edges_hz)-1)]: how fast each gated band (gated_fbank_bands) moves. Its mean
  over time removed, Hann-windowed; the log of its mean power in each modulation band
  [edges_hz[k], edges_hz[k+1]) of the frame rate's spectrum, averaged over the bands of each
  patch row. A rhythm (stitches, clicks, strokes) or a beat between tones shows here, not in
  the level."""
  mixed = gated_fbank_bands(fbank_pair, gate, rows, band_bins)
  batch, length, _ = mixed.shape
  frequencies = np.fft.rfftfreq(length, 1.0 / frame_rate)
  masks = np.stack([(frequencies >= low) & (frequencies < high)
                    for low, high in zip(edges_hz[:-1], edges_hz[1:])], axis=1)
  if not masks.any(axis=0).all():
    raise ValueError(f'{length} frames at {frame_rate} Hz ({frequencies[1]:.2f}-Hz resolution) '
                     f'leave a modulation band of {tuple(edges_hz)} Hz empty: crops too short')
  mixed = (mixed - mixed.mean(axis=1, keepdims=True)) * jnp.hanning(length)[None, :, None]
  power = jnp.square(jnp.abs(jnp.fft.rfft(mixed, axis=1)))  # [B, frequencies, bands]
  masks = jnp.asarray(masks, jnp.float32)
  log_power = jnp.log(jnp.einsum('bfn,fk->bnk', power, masks) / masks.sum(axis=0) + 1e-6)
  return log_power.reshape(batch, rows, -1, masks.shape[1]).mean(axis=2).reshape(batch, -1)


def _mean_and_std_over_axis_1(x):
  """[B, N, ...] -> [B, ..., 2·last]: mean and standard deviation (floored at 1e-3) over axis 1,
  concatenated along the last axis."""
  mean = x.mean(axis=1)
  var = jnp.mean(jnp.square(x - mean[:, None]), axis=1)
  return jnp.concatenate([mean, jnp.sqrt(jnp.maximum(var, 1e-6))], axis=-1)
