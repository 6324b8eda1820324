"""Front ends over a batch of rows in steps, so that each step's frames and spectra stay in a
CPU's caches (the Kaldi fbank, 16 × 10 s of two channels: 36 against 110 ms all at once)."""
from __future__ import annotations

from typing import Callable

import jax


def in_steps() -> bool:
  """Whether the front ends loop over their rows: on a CPU with one device. Elsewhere the batch
  goes at once; with several devices its rows may be sharded across them, and a loop over a
  sharded axis would gather every row onto every device."""
  return jax.default_backend() == 'cpu' and jax.device_count() == 1


def map_rows(fn: Callable, rows, rows_per_step: int):
  """fn(rows [B, ...]) -> [B, ...], computed `rows_per_step` rows at a time where `in_steps()`
  and all at once elsewhere."""
  if not in_steps() or rows_per_step >= rows.shape[0]:
    return fn(rows)
  return jax.lax.map(lambda row: fn(row[None])[0], rows, batch_size=max(1, rows_per_step))
