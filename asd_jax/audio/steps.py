"""How the front ends batch their work: frames as shifted views of the wave; rows in steps, so
that each step's frames and spectra stay in a CPU's caches (the Kaldi fbank, 16 × 10 s of two
channels: 36 against 110 ms all at once); and whole clips zero-padded to a few lengths, so that
clips of many lengths share a few compiles (a new length cost the tiny detector 0.2-0.3 s)."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from asd_jax.audio import SAMPLE_RATE

# Whole clips are zero-padded to a multiple of this many samples before a jitted front end.
LENGTH_BUCKET = SAMPLE_RATE


def pad_to_bucket(wave: np.ndarray) -> np.ndarray:
  """[..., S] -> [..., S'] with zeros after the end, S' the next multiple of LENGTH_BUCKET. A
  front end whose frames each end inside the clip (Kaldi's) or whose frames past the end are
  zeros anyway (librosa's centred ones) computes the clip's own frames unchanged from it."""
  return np.pad(wave, [(0, 0)] * (wave.ndim - 1) + [(0, -wave.shape[-1] % LENGTH_BUCKET)])


def frames(rows, length: int, hop: int, count: int):
  """[B, S] -> the first `count` frames [B, count, length], `hop` samples apart, zeros past the
  end: shifted views of the wave cut into hop-sample blocks, not a gather (which XLA fused badly
  with the rfft on a CPU: docs/performance.md)."""
  views = -(-length // hop)  # blocks a frame touches
  blocks_needed = count + views - 1
  missing = blocks_needed * hop - rows.shape[-1]
  if missing > 0:
    rows = jnp.pad(rows, ((0, 0), (0, missing)))
  blocks = rows[:, :blocks_needed * hop].reshape(rows.shape[0], blocks_needed, hop)
  return jnp.concatenate([blocks[:, i:i + count, :min(hop, length - i * hop)]
                          for i in range(views)], axis=-1)


def in_steps() -> bool:
  """Whether a front end on the default device loops over its rows: on a CPU with one device.
  Elsewhere the batch goes at once; with several devices its rows may be sharded across them,
  and a loop over a sharded axis would gather every row onto every device."""
  return jax.default_backend() == 'cpu' and jax.device_count() == 1


def map_rows(fn: Callable, rows, rows_per_step: int):
  """fn(rows [B, ...]) -> [B, ...], computed `rows_per_step` rows at a time (at least one), or at
  once where that is all of them."""
  if rows_per_step >= rows.shape[0]:
    return fn(rows)
  return jax.lax.map(lambda row: fn(row[None])[0], rows, batch_size=max(1, rows_per_step))
