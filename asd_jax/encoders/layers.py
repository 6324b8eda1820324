"""Building blocks shared by the BEATs and AudioMAE ports."""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from asd_jax.audio import SAMPLE_RATE


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


def layer_stack(layer: type[nn.Module], remat: str, length: int) -> type[nn.Module]:
  """`length` copies of `layer` as one scanned module (parameters stacked on axis 0, one
  compile of the layer), each called as layer(x, broadcast argument) -> (x, None)."""
  return nn.scan(rematerialised(layer, remat), variable_axes={'params': 0},
                 split_rngs={'params': True, 'dropout': True}, in_axes=nn.broadcast,
                 length=length)


# How a layer computes softmax attention (`attend`):
# - 'matmul': two batched matmuls with the heads next to the batch and the softmax between them
#   in float32, attention-probability dropout in training; the fastest on XLA's CPU backend.
# - 'fused': jax.nn.dot_product_attention, cuDNN's fused kernel on a GPU when the compute dtype
#   is bfloat16 or float16 (no [B, H, N, N] probabilities kept for the backward pass), XLA's
#   otherwise. It has no dropout on the probabilities: build.validate refuses to train an
#   encoder whose attention_dropout is above 0 with it.
ATTENTION = ('matmul', 'fused')


def fused_implementation(dtype) -> str:
  """jax.nn.dot_product_attention's implementation for 'fused' attention at a compute dtype."""
  low_precision = jnp.dtype(dtype) in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
  return 'cudnn' if jax.default_backend() == 'gpu' and low_precision else 'xla'


class EncoderModule(nn.Module):
  """What both encoders are built from: the architecture config, LoRA (None: frozen weights
  only), the compute dtype, the remat policy and the attention (ATTENTION)."""
  config: Any
  lora: Any = None  # LoRAConfig | None
  dtype: Any = jnp.float32
  remat: str = 'none'  # REMAT_POLICIES: what training keeps for the backward pass
  attention: str = 'matmul'


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
                       f'(clip shorter than {(400 + (p - 1) * 160) / SAMPLE_RATE:.3f} s)')
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


def attend(q, k, v, bias=None, probs_dropout=None, attention: str = 'matmul'):
  """Softmax attention over heads.  q, k, v [B, N, H, d]; bias [B|1, H, N, N] -> [B, N, H·d].

  Scores are q·k/√d (+ bias), softmax in float32 whatever the compute dtype; `probs_dropout`
  (a callable, training only; 'matmul' only) acts on the attention probabilities; `attention`
  is one of ATTENTION above. 'matmul' moves the heads next to the batch before the two matmuls:
  XLA's CPU backend runs [B, H, N, d] batched matmuls 1.5x faster than the same einsums with the
  heads in the middle (AudioMAE-base, batch 16: 0.27 s against 0.42 s per layer). The named
  scopes give the op kinds of benchmarks/profile_ops.py.
  """
  if attention == 'fused':
    if probs_dropout is not None:
      raise ValueError('fused attention has no dropout on the attention probabilities')
    with jax.named_scope('fused_attention'):
      out = jax.nn.dot_product_attention(
          q, k, v, bias=None if bias is None else bias.astype(q.dtype),
          implementation=fused_implementation(q.dtype))
    return out.reshape(*out.shape[:2], -1)
  if attention != 'matmul':
    raise ValueError(f'attention {attention!r} is not one of {ATTENTION}')
  with jax.named_scope('attention_layout'):
    q, k, v = (jnp.swapaxes(x, 1, 2) for x in (q, k, v))  # [B, H, N, d]
  scale = q.shape[-1]**-0.5
  with jax.named_scope('attention_scores'):
    scores = jnp.matmul(q * jnp.asarray(scale, q.dtype), jnp.swapaxes(k, -1, -2))
  with jax.named_scope('softmax'):
    scores = scores.astype(jnp.float32)
    if bias is not None:
      scores = scores + bias
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
  if probs_dropout is not None:
    probs = probs_dropout(probs)
  with jax.named_scope('attention_values'):
    out = jnp.matmul(probs, v)
  with jax.named_scope('attention_layout'):
    out = jnp.swapaxes(out, 1, 2)  # [B, N, H, d]
    return out.reshape(*out.shape[:2], -1)


def gelu(x):
  """Exact (erf) GELU, as torch.nn.GELU() and fairseq's 'gelu'."""
  with jax.named_scope('gelu'):
    return jax.nn.gelu(x, approximate=False)
