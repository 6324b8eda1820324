"""Building blocks shared by the BEATs and AudioMAE ports."""
from __future__ import annotations

import math
from typing import Any, NamedTuple

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


class HeadBias(NamedTuple):
  """An additive attention bias in factors, as BEATs builds it: a per-head table [H, N, N],
  times a per-clip, per-query gate [B, N, H] where there is one. Kept apart so that attention
  in steps (`attend`) forms only its own heads' [N, N] slices."""
  table: jax.Array
  gate: jax.Array | None = None

  def full(self):
    """[B|1, H, N, N]."""
    if self.gate is None:
      return self.table[None]
    with jax.named_scope('relative_position_bias'):
      return self.gate.transpose(0, 2, 1)[..., None] * self.table[None]


# Inference on a CPU runs 'matmul' attention this many (clip, head) pairs a step (a lax.map),
# so that one step's [N, N] scores stay in cache: AudioMAE-base 2-3.5 % faster at batch 1, 4
# and 16, bit-identical, and no [B, H, N, N] tensor in memory (docs/performance.md).
HEADS_PER_STEP = 4


def attend(q, k, v, bias: HeadBias | None = None, probs_dropout=None, attention: str = 'matmul',
           inference: bool = False):
  """Softmax attention over heads.  q, k, v [B, N, H, d] -> [B, N, H·d].

  Scores are q·k/√d (+ bias), softmax in float32 whatever the compute dtype; `probs_dropout`
  (a callable, training only; 'matmul' only) acts on the attention probabilities; `attention`
  is one of ATTENTION above. 'matmul' moves the heads next to the batch before the two matmuls:
  XLA's CPU backend runs [B, H, N, d] batched matmuls 1.5x faster than the same einsums with the
  heads in the middle (AudioMAE-base, batch 16: 0.27 s against 0.42 s per layer); with
  `inference` on a CPU, HEADS_PER_STEP heads at a time. The named scopes give the op kinds of
  benchmarks/profile_ops.py.
  """
  if attention == 'fused':
    if probs_dropout is not None:
      raise ValueError('fused attention has no dropout on the attention probabilities')
    with jax.named_scope('fused_attention'):
      out = jax.nn.dot_product_attention(
          q, k, v, bias=None if bias is None else bias.full().astype(q.dtype),
          implementation=fused_implementation(q.dtype))
    return out.reshape(*out.shape[:2], -1)
  if attention != 'matmul':
    raise ValueError(f'attention {attention!r} is not one of {ATTENTION}')
  if inference and probs_dropout is None and jax.default_backend() == 'cpu':
    return _attend_in_steps(q, k, v, bias)
  with jax.named_scope('attention_layout'):
    q, k, v = (jnp.swapaxes(x, 1, 2) for x in (q, k, v))  # [B, H, N, d]
  out = _softmax_attention(q, k, v, None if bias is None else bias.full(), probs_dropout)
  with jax.named_scope('attention_layout'):
    out = jnp.swapaxes(out, 1, 2)  # [B, N, H, d]
    return out.reshape(*out.shape[:2], -1)


def _softmax_attention(q, k, v, bias=None, probs_dropout=None):
  """q, k, v [..., N, d] (heads in the leading axes), bias broadcastable to [..., N, N]."""
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
    return jnp.matmul(probs, v)


def _attend_in_steps(q, k, v, bias: HeadBias | None):
  """`attend` for inference, a step for each group of `clips` clips × `heads` heads (about
  HEADS_PER_STEP pairs); each step slices its own heads' rows of the bias table."""
  batch, tokens, num_heads, depth = q.shape
  clips = math.gcd(batch, HEADS_PER_STEP)
  heads = math.gcd(num_heads, HEADS_PER_STEP // clips)
  head_groups, clip_groups = num_heads // heads, batch // clips

  def to_steps(x):  # [B, ..., H, ...] with the heads at axis 2 -> [steps, heads, clips, ...]
    x = x.reshape(clip_groups, clips, tokens, head_groups, heads, *x.shape[3:])
    x = jnp.moveaxis(x, (3, 0, 4, 1), (0, 1, 2, 3))
    return x.reshape(head_groups * clip_groups, heads, clips, *x.shape[4:])

  with jax.named_scope('attention_layout'):
    pairs = {'q': to_steps(q), 'k': to_steps(k), 'v': to_steps(v),
             'head_group': jnp.repeat(jnp.arange(head_groups), clip_groups)}
    if bias is not None and bias.gate is not None:
      pairs['gate'] = to_steps(bias.gate[..., None])[..., 0]  # [steps, heads, clips, N]

  def step(pair):
    step_bias = None
    if bias is not None:
      step_bias = jax.lax.dynamic_slice_in_dim(bias.table, pair['head_group'] * heads, heads)
      step_bias = step_bias[:, None]  # [heads, 1, N, N]
      if 'gate' in pair:
        with jax.named_scope('relative_position_bias'):
          step_bias = pair['gate'][..., None] * step_bias
    return _softmax_attention(pair['q'], pair['k'], pair['v'], step_bias)

  out = jax.lax.map(step, pairs)  # [steps, heads, clips, N, d]
  with jax.named_scope('attention_layout'):
    out = out.reshape(head_groups, clip_groups, heads, clips, tokens, depth)
    out = jnp.moveaxis(out, (1, 3, 4, 0, 2), (0, 1, 2, 3, 4))  # [B/c, c, N, H/h, h, d]
    return out.reshape(batch, tokens, num_heads * depth)


def gelu(x):
  """Exact (erf) GELU, as torch.nn.GELU() and fairseq's 'gelu'."""
  with jax.named_scope('gelu'):
    return jax.nn.gelu(x, approximate=False)
