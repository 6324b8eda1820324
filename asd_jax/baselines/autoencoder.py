"""The official DCASE Task 2 autoencoder baseline (nttcslab), in Flax/optax.

Log-mel (audio.logmel: 128 bins, n_fft 1024, hop 512, power 2, 10·log10), 5 consecutive
frames stacked into 640-d vectors; a dense AE 640-128-128-128-128-8-128-128-128-128-640 with BatchNorm + ReLU, Adam
1e-3, batch 256, one model per machine type on channel 0 (the near field) of the normal
training clips. Scores: "MSE", the mean reconstruction error over a clip's vectors, and
"selective Mahalanobis", the minimum over the source and target covariances of the error
vectors of the Mahalanobis form d̄ᵀ Σ⁻¹ d̄ of the clip's mean error vector (what the official
code's average of the full n×n matrix D Σ⁻¹ Dᵀ equals).
"""
from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from asd_jax.audio.logmel import N_MELS
from asd_jax.baselines.frame_store import FRAMES, FrameStore
from asd_jax.scoring.ledoit_wolf import pinvh


def stacked_vectors(frames: np.ndarray, path: str) -> np.ndarray:
  """[T − 4, 640]: every run of 5 consecutive frames of a [128, T] log-mel, side by side."""
  count = frames.shape[1] - FRAMES + 1
  if count < 1:
    raise ValueError(f'{path}: too short for {FRAMES} stacked frames')
  return np.concatenate([frames[:, t:t + count].T for t in range(FRAMES)],
                        axis=1).astype(np.float32)


class AutoEncoder(nn.Module):
  hidden: tuple[int, ...] = (128, 128, 128, 128, 8, 128, 128, 128, 128)

  @nn.compact
  def __call__(self, x, train: bool):
    dim = x.shape[-1]
    for width in self.hidden:
      x = nn.Dense(width)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)
      x = nn.relu(x)
    return nn.Dense(dim)(x)


@dataclasses.dataclass
class TrainedAE:
  variables: dict
  precisions: dict  # domain -> [640, 640] inverse covariance of the error vectors

  def errors(self, vectors: np.ndarray) -> np.ndarray:
    recon = _predict(self.variables, jnp.asarray(vectors))
    return vectors - np.asarray(recon)

  def scores(self, vectors: np.ndarray) -> tuple[float, float]:
    """(MSE, selective Mahalanobis) of one clip's vectors."""
    errors = self.errors(vectors)
    mean_error = errors.mean(axis=0).astype(np.float64)
    maha = min(float(mean_error @ p @ mean_error) for p in self.precisions.values())
    return float(np.mean(errors**2)), maha


@jax.jit
def _predict(variables, x):
  return AutoEncoder().apply(variables, x, train=False)


def _adam(learning_rate: float) -> optax.GradientTransformation:
  """Adam on the parameters as one flat vector: the same update, in a few fused ops instead of
  several per leaf (the optimiser dominated this tiny network's step on a CPU)."""
  return optax.flatten(optax.adam(learning_rate))


def _train_step(params, batch_stats, opt_state, x, learning_rate: float):
  """One Adam step on the reconstruction MSE."""
  def loss_fn(p):
    recon, updates = AutoEncoder().apply({'params': p, 'batch_stats': batch_stats}, x,
                                         train=True, mutable=['batch_stats'])
    return jnp.mean((recon - x)**2), updates['batch_stats']
  (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  updates, opt_state = _adam(learning_rate).update(grads, opt_state, params)
  return optax.apply_updates(params, updates), stats, opt_state, loss


@functools.partial(jax.jit, static_argnames=('learning_rate',))
def _train_steps(params, batch_stats, opt_state, batches, learning_rate: float):
  """Adam steps on batches [steps, batch, 640] as one compiled scan: a Python loop of jitted
  steps spent more time dispatching than computing on this tiny network."""
  def step(carry, x):
    params, stats, opt_state, _ = _train_step(*carry, x, learning_rate)
    return (params, stats, opt_state), None
  (params, batch_stats, opt_state), _ = jax.lax.scan(step, (params, batch_stats, opt_state),
                                                     batches)
  return params, batch_stats, opt_state


class _DomainMoments:
  """Mean and centred second moment of one domain's error vectors, merged a block at a time
  (Chan et al.'s pairwise update, float64), so the covariance needs no second copy of them."""

  BLOCK = 4096  # rows merged at once: big enough for an efficient GEMM

  def __init__(self):
    self.count, self.mean, self.moment = 0, 0.0, 0.0
    self._pending: list[np.ndarray] = []

  def add(self, errors: np.ndarray) -> None:
    self._pending.append(errors.astype(np.float64))
    if sum(len(e) for e in self._pending) >= self.BLOCK:
      self._merge()

  def _merge(self) -> None:
    if not self._pending:
      return
    block = np.concatenate(self._pending)
    self._pending = []
    mean = block.mean(axis=0)
    centred = block - mean
    total = self.count + len(block)
    delta = mean - self.mean
    self.moment = (self.moment + centred.T @ centred
                   + np.outer(delta, delta) * (self.count * len(block) / total))
    self.mean = self.mean + delta * (len(block) / total)
    self.count = total

  def covariance(self) -> np.ndarray:
    """(n − 1)-normalised covariance of every row added."""
    self._merge()
    return self.moment / max(self.count - 1, 1)


def train_autoencoder(store: FrameStore, epochs: int, batch_size: int, learning_rate: float,
                      seed: int, chunk_steps: int = 4) -> TrainedAE:
  """Fits the AE on every vector of the store's clips, then the per-domain error covariances.

  Each epoch is a fresh permutation of all vectors cut into full batches (the last partial
  batch is dropped, as in the official code); `chunk_steps` batches at a time are read from the
  store and run as one scan, so memory holds one chunk, not the data."""
  variables = AutoEncoder().init(jax.random.PRNGKey(seed), jnp.zeros((2, FRAMES * N_MELS)),
                                 train=False)
  opt_state = _adam(learning_rate).init(variables['params'])
  params, stats = variables['params'], variables['batch_stats']
  rng = np.random.default_rng(seed)
  starts = store.vector_starts()
  batch_size = min(batch_size, len(starts))
  steps = len(starts) // batch_size
  for _ in range(epochs):
    order = rng.permutation(len(starts))[:steps * batch_size].reshape(steps, batch_size)
    for first in range(0, steps, chunk_steps):
      batches = store.vectors(starts[order[first:first + chunk_steps]])
      params, stats, opt_state = _train_steps(params, stats, opt_state, batches, learning_rate)
  trained = TrainedAE({'params': params, 'batch_stats': stats}, {})
  moments: dict[str, _DomainMoments] = {}
  for index, domain in enumerate(store.domains):
    moments.setdefault(domain, _DomainMoments()).add(trained.errors(store.clip_vectors(index)))
  for domain in sorted(moments):
    trained.precisions[domain] = pinvh(moments[domain].covariance())
  return trained
