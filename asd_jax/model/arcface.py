"""ArcFace heads (Deng et al., 2019) on the 256-d embedding (report §3.5)."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def l2_normalize(x, axis=-1, eps=1e-12):
  return x / jnp.sqrt(jnp.maximum(jnp.sum(x * x, axis=axis, keepdims=True), eps))


class CosineHead(nn.Module):
  """cos θ between the normalised embedding and each normalised class weight.
  [B, E] -> [B, C]; the margin is applied in `arcface_loss`, so inference needs no labels."""
  num_classes: int

  @nn.compact
  def __call__(self, embedding):
    weight = self.param('weight', nn.initializers.xavier_uniform(),
                        (embedding.shape[-1], self.num_classes))
    return l2_normalize(embedding.astype(jnp.float32)) @ l2_normalize(weight, axis=0)


def arcface_logits(cos, labels, scale: float, margin: float):
  """s·cos(θ_y + m) for the true class, s·cos θ_j for the others.  cos [B, C], labels [B]."""
  theta = jnp.arccos(jnp.clip(cos, -1.0 + 1e-7, 1.0 - 1e-7))
  target = jax.nn.one_hot(jnp.maximum(labels, 0), cos.shape[-1], dtype=bool)
  return scale * jnp.where(target, jnp.cos(theta + margin), cos)


def arcface_loss(cos, labels, scale: float, margin: float, mask=None):
  """Mean cross-entropy of ArcFace logits over the rows where `mask` (default: all) holds.

  Returns (loss, accuracy of argmax cos over the same rows); a batch with no valid row gives 0.
  """
  logits = arcface_logits(cos, labels, scale, margin)
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  nll = -jnp.take_along_axis(log_probs, jnp.maximum(labels, 0)[:, None], axis=-1)[:, 0]
  mask = jnp.ones_like(nll) if mask is None else mask.astype(nll.dtype)
  count = jnp.maximum(mask.sum(), 1.0)
  correct = (jnp.argmax(cos, axis=-1) == labels).astype(nll.dtype)
  return (nll * mask).sum() / count, (correct * mask).sum() / count
