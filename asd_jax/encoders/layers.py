"""Building blocks shared by the BEATs and AudioMAE ports."""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


# What the backward pass keeps of each transformer layer (the rest is recomputed from the
# layer's input). Training keeps every layer's activations because LoRA sits in all of them, and
# the [B, H, N, N] attention tensors dominate: 'attention' keeps the weight matmuls' outputs and
# recomputes scores and softmax; 'full' keeps only the layer's input (README, Performance).
REMAT_POLICIES = {
    'none': None,
    'attention': jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    'full': jax.checkpoint_policies.nothing_saveable,
}


def rematerialised(layer: type[nn.Module], remat: str) -> type[nn.Module]:
  """`layer` wrapped for the backward pass as `remat` (a REMAT_POLICIES key) says."""
  if remat not in REMAT_POLICIES:
    raise ValueError(f'remat {remat!r} is not one of {list(REMAT_POLICIES)}')
  if remat == 'none':
    return layer
  return nn.remat(layer, prevent_cse=False, policy=REMAT_POLICIES[remat])


class PatchEmbed(nn.Module):
  """Non-overlapping p×p patches of a spectrogram, as Conv2d(1→E, kernel = stride = p).

  fbank [B, T, F] -> tokens [B, (T//p)·(F//p), E], time-major (n = t·(F//p) + f); trailing
  T % p frames are dropped, as the strided convolution drops them. Written as a reshape and one
  matmul, which is exactly the convolution and faster than a general conv on CPU.
  Kernel layout is Flax's conv layout [p, p, 1, E].
  """
  features: int
  patch_size: int
  use_bias: bool
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, fbank):
    b, t, f = fbank.shape
    p = self.patch_size
    steps = t // p
    if steps == 0:
      raise ValueError(f'input has {t} fbank frames, fewer than one {p}-frame patch '
                       f'(clip shorter than {(400 + (p - 1) * 160) / 16000:.3f} s)')
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (p, p, 1, self.features))
    patches = fbank[:, :steps * p].reshape(b, steps, p, f // p, p)
    x = jnp.einsum('btkfl,kle->btfe', patches.astype(self.dtype),
                   kernel[:, :, 0].astype(self.dtype))
    if self.use_bias:
      x = x + self.param('bias', nn.initializers.zeros, (self.features,)).astype(self.dtype)
    return x.reshape(b, steps * (f // p), self.features)


def split_heads(x, heads: int):
  """[B, N, D] -> [B, N, H, D/H]."""
  return x.reshape(*x.shape[:-1], heads, x.shape[-1] // heads)


# Score tensors above this many elements are computed a few clips at a time (inference only):
# XLA writes the [B, H, N, N] scores to memory between the matmuls and the softmax, and past
# the caches (4 MiB L2 per core here) each pass runs at memory speed: BEATs-base at batch 16
# x 10 s holds 47 M scores (189 MB) per layer (docs/performance.md).
SCORES_PER_CHUNK = 2 * 12 * 513 * 513


def attend(q, k, v, bias=None, probs_dropout=None):
  """Softmax attention over heads.  q, k, v [B, N, H, d]; bias [B|1, H, N, N] -> [B, N, H·d].

  Scores are q·k/√d (+ bias) in float32 whatever the compute dtype; the softmax is normalised
  after the value matmul (exp(s - max)·v / Σexp), which is exact and spares one pass over the
  [N, N] probabilities. `probs_dropout` (a callable, training only) acts on the unnormalised
  probabilities, the same as on the normalised ones. Heads are moved next to the batch before
  the two matmuls: XLA's CPU backend runs [B, H, N, d] batched matmuls 1.5x faster than the
  same einsums with the heads in the middle (AudioMAE-base, batch 16: 0.27 s against 0.42 s per
  layer). Without dropout, large batches go through in chunks of clips (SCORES_PER_CHUNK).
  """
  q, k, v = (jnp.swapaxes(x, 1, 2) for x in (q, k, v))  # [B, H, N, d]
  batch, heads, length, _ = q.shape
  chunk = max(1, SCORES_PER_CHUNK // (heads * length * length))
  if probs_dropout is None and batch > chunk and batch % chunk == 0:
    split = lambda x: None if x is None else x.reshape(batch // chunk, chunk, *x.shape[1:])
    if bias is not None and bias.shape[0] == 1:
      out = jax.lax.map(lambda qkv: _attend_heads(*qkv, bias, None), (split(q), split(k),
                                                                        split(v)))
    else:
      out = jax.lax.map(lambda qkvb: _attend_heads(*qkvb, None),
                        (split(q), split(k), split(v), split(bias)))
    out = out.reshape(batch, *out.shape[2:])
  else:
    out = _attend_heads(q, k, v, bias, probs_dropout)
  out = jnp.swapaxes(out, 1, 2)  # [B, N, H, d]
  return out.reshape(*out.shape[:2], -1)


def _attend_heads(q, k, v, bias, probs_dropout):
  """[B, H, N, d] (bias [B|1, H, N, N] or None) -> [B, H, N, d]."""
  scale = q.shape[-1]**-0.5
  with jax.named_scope('attention_scores'):
    scores = jnp.matmul(q * jnp.asarray(scale, q.dtype), jnp.swapaxes(k, -1, -2))
  with jax.named_scope('softmax'):
    scores = scores.astype(jnp.float32)
    if bias is not None:
      scores = scores + bias
    weights = jnp.exp(scores - jax.lax.stop_gradient(scores.max(axis=-1, keepdims=True)))
    total = weights.sum(axis=-1, keepdims=True)
  weights = weights.astype(v.dtype)
  if probs_dropout is not None:
    weights = probs_dropout(weights)
  with jax.named_scope('attention_values'):
    return (jnp.matmul(weights, v) / total).astype(v.dtype)


def gelu(x):
  """Exact (erf) GELU, as torch.nn.GELU() and fairseq's 'gelu'."""
  with jax.named_scope('gelu'):
    return jax.nn.gelu(x, approximate=False)
