"""Hand-written LoRA (Hu et al., 2022) for the frozen encoders.

`LoRADense` is a Dense layer whose frozen kernel/bias come from the converted checkpoint and
whose optional low-rank update (alpha/r)·B·A is trained: A [in, r] Kaiming-uniform-like, B [r, out]
zero, so the adapted model equals the pre-trained one at step 0. Dropout acts on the LoRA input
only, and only in training. `trainable_mask` tells the optimiser which leaves move;
`merge_lora` folds the update into the kernel for inference.
"""
from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

from asd_jax.encoders.config import LoRAConfig

LORA_A, LORA_B = 'lora_a', 'lora_b'


def _kaiming_uniform_a(key, shape, dtype=jnp.float32):
  # nn.init.kaiming_uniform_(a=sqrt(5)) as in the reference LoRA: bound = 1/sqrt(fan_in).
  bound = 1.0 / math.sqrt(shape[0])
  return jax.random.uniform(key, shape, dtype, -bound, bound)


class LoRADense(nn.Module):
  """y = x·W + b (+ (alpha/r)·dropout(x)·A·B when lora.rank > 0).  x [..., in] -> [..., out]."""
  features: int
  lora: LoRAConfig | None = None
  use_bias: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, deterministic: bool = True):
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (x.shape[-1], self.features))
    y = jnp.einsum('...i,io->...o', x.astype(self.dtype), kernel.astype(self.dtype))
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,)).astype(self.dtype)
    if self.lora is not None and self.lora.rank > 0:
      a = self.param(LORA_A, _kaiming_uniform_a, (x.shape[-1], self.lora.rank))
      b = self.param(LORA_B, nn.initializers.zeros, (self.lora.rank, self.features))
      h = nn.Dropout(self.lora.dropout)(x, deterministic=deterministic)
      y = y + self.lora.scale * jnp.einsum('...i,ir,ro->...o', h.astype(self.dtype),
                                           a.astype(self.dtype), b.astype(self.dtype))
    return y


def is_lora_path(path: tuple[str, ...]) -> bool:
  return path[-1] in (LORA_A, LORA_B)


def split_trainable(params, trainable=is_lora_path):
  """(trainable, frozen): two nested trees partitioning `params` by `trainable(path)`.

  The training step differentiates and updates only the trainable half, so frozen weights get
  no gradient and no optimiser state at all.
  """
  flat = traverse_util.flatten_dict(params)
  pick = lambda keep: traverse_util.unflatten_dict(
      {k: v for k, v in flat.items() if bool(trainable(k)) == keep})
  return pick(True), pick(False)


def combine(trainable, frozen):
  """Inverse of `split_trainable`: one nested parameter tree."""
  return traverse_util.unflatten_dict({**traverse_util.flatten_dict(frozen),
                                       **traverse_util.flatten_dict(trainable)})


def merge_lora(params, lora: LoRAConfig):
  """Folds W += (alpha/r)·A·B into every adapted kernel and drops the LoRA leaves.

  The result is a plain parameter tree for the same module built with LoRA rank 0; stacked
  (scanned) layers are handled because the contraction keeps leading axes.
  """
  flat = traverse_util.flatten_dict(params)
  merged = {}
  for path, value in flat.items():
    if is_lora_path(path):
      continue
    prefix = path[:-1]
    if path[-1] == 'kernel' and prefix + (LORA_A,) in flat:
      a, b = flat[prefix + (LORA_A,)], flat[prefix + (LORA_B,)]
      value = value + lora.scale * jnp.einsum('...ir,...ro->...io', a, b)
    merged[path] = value
  return traverse_util.unflatten_dict(merged)


def overlay(base, converted):
  """Returns `base` with every leaf that `converted` also has replaced by the converted one.

  Used to put checkpoint weights into a freshly initialised tree that also holds LoRA leaves.
  Every converted leaf must exist in `base` with the same shape.
  """
  flat_base = traverse_util.flatten_dict(base)
  for path, value in traverse_util.flatten_dict(converted).items():
    if path not in flat_base:
      raise KeyError(f'converted parameter {"/".join(path)} has no place in the model')
    if tuple(flat_base[path].shape) != tuple(value.shape):
      raise ValueError(f'converted parameter {"/".join(path)} has shape {tuple(value.shape)}, '
                       f'model expects {tuple(flat_base[path].shape)}')
    flat_base[path] = jnp.asarray(value, flat_base[path].dtype)
  return traverse_util.unflatten_dict(flat_base)
