"""Building blocks shared by the BEATs and AudioMAE ports."""
from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

from asd_jax.audio import SAMPLE_RATE


# What the backward pass keeps of each transformer layer (the rest is recomputed from the
# layer's input). Training keeps every layer's activations because LoRA sits in all of them.
# The attention never keeps its [B, H, N, N] tensors (_softmax_attention). 'attention' keeps the
# weight matmuls' outputs and the attention's log-sum-exp, and recomputes the element-wise rest;
# 'full' keeps only the layer's input (README, Performance).
REMAT_POLICIES = {
    'none': None,
    'attention': jax.checkpoint_policies.save_from_both_policies(
        jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
        jax.checkpoint_policies.save_only_these_names('attention_lse')),
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


def attend(q, k, v, bias_table=None, bias_gate=None, dropout_rate: float = 0.0,
           dropout_key=None, attention: str = 'matmul'):
  """Softmax attention over heads.  q, k, v [B, N, H, d] -> [B, N, H·d].

  Scores are q·k/√d + bias, softmax in float32 whatever the compute dtype. The bias is
  `bias_table` [H, N, N], times `bias_gate` [B, H, N] per query where given (BEATs' gated
  relative positions). `dropout_rate` > 0 (training, 'matmul' only) drops attention
  probabilities with a mask drawn from `dropout_key`, as flax's Dropout does. `attention` is one
  of ATTENTION above. 'matmul' moves the heads next to the batch before the two matmuls: XLA's
  CPU backend runs [B, H, N, d] batched matmuls 1.5x faster than the same einsums with the heads
  in the middle (AudioMAE-base, batch 16: 0.27 s against 0.42 s per layer). The named scopes
  give the op kinds of benchmarks/profile_ops.py.
  """
  if attention == 'fused':
    if dropout_rate:
      raise ValueError('fused attention has no dropout on the attention probabilities')
    bias = None if bias_table is None else _bias(bias_table, bias_gate)
    with jax.named_scope('fused_attention'):
      out = jax.nn.dot_product_attention(
          q, k, v, bias=None if bias is None else bias.astype(q.dtype),
          implementation=fused_implementation(q.dtype))
    return out.reshape(*out.shape[:2], -1)
  if attention != 'matmul':
    raise ValueError(f'attention {attention!r} is not one of {ATTENTION}')
  with jax.named_scope('attention_layout'):
    q, k, v = (jnp.swapaxes(x, 1, 2) for x in (q, k, v))  # [B, H, N, d]
  out = _softmax_attention(q, k, v, bias_table, bias_gate,
                           dropout_key if dropout_rate else None, float(dropout_rate))
  with jax.named_scope('attention_layout'):
    out = jnp.swapaxes(out, 1, 2)  # [B, N, H, d]
    return out.reshape(*out.shape[:2], -1)


def _bias(table, gate):
  """[1 | B, H, N, N] attention bias: the table [H, N, N], times the gate [B, H, N] per query
  where given."""
  return table[None] if gate is None else gate[..., None] * table


def _scores(q, k, table, gate):
  """float32 scores q·k/√d + bias of head-major q, k [B, H, N, d]."""
  with jax.named_scope('attention_scores'):
    scores = jnp.matmul(q * jnp.asarray(q.shape[-1]**-0.5, q.dtype), jnp.swapaxes(k, -1, -2))
  with jax.named_scope('softmax'):
    scores = scores.astype(jnp.float32)
    if table is not None:
      scores = scores + _bias(table, gate)
  return scores


def _dropout_mask(key, rate, shape):
  """flax Dropout's mask for (key, rate): True where an entry is kept; None without dropout."""
  return None if key is None else jax.random.bernoulli(key, 1.0 - rate, shape)


def _dropped(x, mask, rate):
  """x with a dropout mask applied, kept entries scaled by 1/(1 − rate), as flax Dropout."""
  if mask is None:
    return x
  return jnp.where(mask, x / jnp.asarray(1.0 - rate, x.dtype), 0)


def _attention_forward(q, k, v, table, gate, key, rate):
  """(out [B, H, N, d], log-sum-exp of the scores [B, H, N, 1]). The softmax is normalised
  after the value matmul, on [N, d] rather than [N, N]: one pass over the scores fewer
  (AudioMAE b=4 on CPU: softmax 102–115 → 80–84 ms a call)."""
  scores = _scores(q, k, table, gate)
  with jax.named_scope('softmax'):
    top = jnp.max(scores, axis=-1, keepdims=True)
    unnormalised = jnp.exp(scores - top)
    total = jnp.sum(unnormalised, axis=-1, keepdims=True)
    kept = unnormalised.astype(v.dtype)
    kept = _dropped(kept, _dropout_mask(key, rate, kept.shape), rate)
  with jax.named_scope('attention_values'):
    out = (jnp.matmul(kept, v) / total).astype(v.dtype)
  return out, top + jnp.log(total)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6,))
def _softmax_attention(q, k, v, table, gate, key, rate):
  """Head-major softmax attention whose backward pass keeps no [B, H, N, N] tensor.

  Autodiff would keep the probabilities (and the dropout mask) of every layer for the backward
  pass, 566 MB a 12-layer step at 4 encoder rows of 496 tokens, or recompute the whole softmax
  under remat. This keeps the per-row log-sum-exp instead and rebuilds the probabilities in one
  pass, as FlashAttention's backward does.
  """
  return _attention_forward(q, k, v, table, gate, key, rate)[0]


def _softmax_attention_fwd(q, k, v, table, gate, key, rate):
  out, lse = _attention_forward(q, k, v, table, gate, key, rate)
  return out, (q, k, v, table, gate, key, checkpoint_name(lse, 'attention_lse'))


def _softmax_attention_bwd(rate, residuals, d_out):
  q, k, v, table, gate, key, lse = residuals
  probs = jnp.exp(_scores(q, k, table, gate) - lse)
  mask = _dropout_mask(key, rate, probs.shape)
  with jax.named_scope('attention_values'):
    d_kept = jnp.matmul(d_out, jnp.swapaxes(v, -1, -2)).astype(jnp.float32)
    d_v = jnp.matmul(jnp.swapaxes(_dropped(probs.astype(v.dtype), mask, rate), -1, -2), d_out)
  with jax.named_scope('softmax'):
    # d_scores = p ⊙ (dp − Σ_j p_j dp_j), where Σ_j p_j dp_j = Σ_j kept_j d_kept_j.
    row = jnp.sum(_dropped(probs, mask, rate) * d_kept, axis=-1, keepdims=True)
    d_scores = probs * (_dropped(d_kept, mask, rate) - row)
    d_table = d_gate = None
    if table is not None:
      if gate is None:
        d_table = d_scores.sum(axis=0)
      else:
        d_table = (d_scores * gate[..., None]).sum(axis=0)
        d_gate = (d_scores * table).sum(axis=-1)
  with jax.named_scope('attention_scores'):
    scale = jnp.asarray(q.shape[-1]**-0.5, q.dtype)
    d_scores = d_scores.astype(q.dtype)
    d_q = jnp.matmul(d_scores, k) * scale
    d_k = jnp.matmul(jnp.swapaxes(d_scores, -1, -2), q * scale)
  return d_q, d_k, d_v.astype(v.dtype), d_table, d_gate, None


_softmax_attention.defvjp(_softmax_attention_fwd, _softmax_attention_bwd)


def gelu(x):
  """Exact (erf) GELU, as torch.nn.GELU() and fairseq's 'gelu'."""
  with jax.named_scope('gelu'):
    return jax.nn.gelu(x, approximate=False)
