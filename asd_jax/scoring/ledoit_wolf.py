"""Ledoit-Wolf shrunk covariance in NumPy (float64), equal to sklearn.covariance.LedoitWolf.

Σ = (1 − δ)·S + δ·μ·I with S the empirical covariance, μ = tr(S)/p and the Ledoit-Wolf optimal
shrinkage δ; the precision is its pseudo-inverse (symmetric), as sklearn's `pinvh`.
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Gaussian:
  mean: np.ndarray  # [D]
  precision: np.ndarray  # [D, D]
  shrinkage: float


def ledoit_wolf_shrinkage(centered: np.ndarray) -> float:
  """Optimal shrinkage of centred data [N, D] towards μ·I (Ledoit & Wolf, 2004)."""
  n, p = centered.shape
  squared = centered**2
  emp_trace = squared.sum(axis=0) / n
  mu = emp_trace.sum() / p
  beta_sum = np.sum(squared.T @ squared)
  delta_sum = np.sum((centered.T @ centered)**2) / n**2
  beta = (beta_sum / n - delta_sum) / (p * n)
  delta = (delta_sum - 2.0 * mu * emp_trace.sum() + p * mu**2) / p
  beta = min(beta, delta)
  return 0.0 if beta == 0 else float(beta / delta)


def pinvh(matrix: np.ndarray) -> np.ndarray:
  """Pseudo-inverse of a symmetric matrix via its eigendecomposition (sklearn's cutoff)."""
  values, vectors = np.linalg.eigh(matrix)
  cutoff = values.max() * max(matrix.shape) * np.finfo(values.dtype).eps
  inverse = np.where(np.abs(values) > cutoff, 1.0 / np.where(values == 0, 1, values), 0.0)
  return (vectors * inverse) @ vectors.T


def fit_ledoit_wolf(x: np.ndarray) -> Gaussian:
  """Mean and Ledoit-Wolf precision of a bank [N, D]; N must be at least 2."""
  x = np.asarray(x, np.float64)
  if x.ndim != 2 or x.shape[0] < 2:
    raise ValueError(f'a Ledoit-Wolf bank needs at least 2 embeddings, got shape {x.shape}')
  mean = x.mean(axis=0)
  centered = x - mean
  shrinkage = ledoit_wolf_shrinkage(centered)
  emp_cov = centered.T @ centered / x.shape[0]
  mu = np.trace(emp_cov) / x.shape[1]
  shrunk = (1.0 - shrinkage) * emp_cov
  shrunk.flat[::x.shape[1] + 1] += shrinkage * mu
  return Gaussian(mean, pinvh(shrunk), shrinkage)
