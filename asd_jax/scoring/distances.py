"""Jitted distance scores against normal reference banks (report §4).

Mahalanobis to each of several banks with the minimum taken (BEATs: source and target banks),
and mean cosine distance to the k nearest bank embeddings (AudioMAE: one global bank).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from asd_jax.scoring.ledoit_wolf import Gaussian


@jax.jit
def mahalanobis(x, means, precisions):
  """x [Q, D], means [K, D], precisions [K, D, D] -> distances [Q, K]."""
  diff = x[:, None, :] - means[None]
  quad = jnp.einsum('qkd,kde,qke->qk', diff, precisions, diff, precision='highest')
  return jnp.sqrt(jnp.maximum(quad, 0.0))


def bank_mahalanobis(x: np.ndarray, banks: list[Gaussian]) -> np.ndarray:
  """Mahalanobis distance to each bank.  x [Q, D] -> [Q, K]."""
  means = np.stack([b.mean for b in banks]).astype(np.float32)
  precisions = np.stack([b.precision for b in banks]).astype(np.float32)
  return np.asarray(mahalanobis(jnp.asarray(x, jnp.float32), means, precisions))


def min_mahalanobis(x: np.ndarray, banks: list[Gaussian]) -> np.ndarray:
  """Score = min over banks of the Mahalanobis distance.  x [Q, D] -> [Q]."""
  return bank_mahalanobis(x, banks).min(axis=1)


def _unit(x):
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@functools.partial(jax.jit, static_argnames=('k', 'exclude_self'))
def knn_cosine(queries, bank, k: int, exclude_self: bool = False):
  """Mean cosine distance (1 − cos) to the k nearest bank rows.  [Q, D], [N, D] -> [Q].

  exclude_self (queries == bank, leave-one-out): each row's own entry is ignored.
  """
  sims = _unit(queries) @ _unit(bank).T
  if exclude_self:
    sims = jnp.where(jnp.eye(sims.shape[0], dtype=bool), -jnp.inf, sims)
  top, _ = jax.lax.top_k(sims, k)
  return jnp.mean(1.0 - top, axis=-1)


def knn_score(queries: np.ndarray, bank: np.ndarray, k: int,
              exclude_self: bool = False) -> np.ndarray:
  """`knn_cosine` with k clipped to the bank size (k > N uses all N neighbours)."""
  available = bank.shape[0] - (1 if exclude_self else 0)
  if available < 1:
    raise ValueError(f'a kNN bank needs at least {2 if exclude_self else 1} embeddings')
  return np.asarray(knn_cosine(jnp.asarray(queries, jnp.float32), jnp.asarray(bank, jnp.float32),
                               min(k, available), exclude_self))
