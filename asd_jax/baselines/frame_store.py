"""A machine type's training log-mels on disk, for the autoencoder baseline's epochs.

The baseline trains on random batches of 640-d vectors (5 consecutive log-mel frames) drawn
from every training clip of a machine type, for many epochs. Held in memory those vectors cost
~2.5 kB per frame, so a DCASE-size machine type would not fit; this store keeps each clip's
frames once, time-major float32 (128 numbers a row), in one file, and builds any batch of
vectors from it. The file is read through a memory map whose pages are handed back once the
batches read since may hold RESIDENT_BYTES of it (`release`), so the resident memory stays
that of a chunk of batches whatever the data size. Each hand-back costs the page faults of
reading those pages again (~2 ms per 256-vector batch on 2 cores), so a file smaller than the
bound is never handed back.
"""
from __future__ import annotations

import mmap
import os

import numpy as np

from asd_jax.audio.logmel import N_MELS

FRAMES = 5  # consecutive log-mel frames stacked into one input vector
RESIDENT_BYTES = 32 << 20  # of a store's file mapped into this process, about, between reads
# Linux maps up to 64 KiB of cached file around each page fault (fault_around_bytes), and
# MADV_RANDOM does not stop it on every kernel: a vector read can map that much.
FAULT_AROUND = 64 << 10


class FrameStore:
  """Clips' [128, T] log-mels written one after another; vectors are read back by start row."""

  def __init__(self, path: str):
    self.path = path
    self.domains: list[str] = []  # of each clip, in the order written
    self._spans: list[tuple[int, int]] = []  # (first row, frames) of each clip
    self._rows = 0
    self._file = open(path, 'wb')
    self._map: mmap.mmap | None = None
    self._touched = 0  # bytes of pages the reads since the last hand-back may have mapped

  def append(self, frames: np.ndarray, domain: str, name: str) -> None:
    """Adds one clip's [128, T] log-mel; `name` is what a too-short clip's error names."""
    if frames.shape[1] < FRAMES:
      raise ValueError(f'{name}: too short for {FRAMES} stacked frames')
    self._file.write(np.ascontiguousarray(frames.T, dtype=np.float32).tobytes())
    self._spans.append((self._rows, frames.shape[1]))
    self.domains.append(domain)
    self._rows += frames.shape[1]

  def __len__(self) -> int:
    return len(self._spans)

  @property
  def _frames(self) -> np.ndarray:
    """[rows, 128] view of the file (opened on first read, after the last append)."""
    if self._map is None:
      self._file.close()
      with open(self.path, 'rb') as f:
        self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(self._map, np.float32).reshape(self._rows, N_MELS)

  def vector_starts(self) -> np.ndarray:
    """[V] first row of every vector of every clip, clip by clip (int64)."""
    return np.concatenate([np.arange(first, first + count - FRAMES + 1)
                           for first, count in self._spans])

  def vectors(self, starts: np.ndarray) -> np.ndarray:
    """[..., 640] the vectors that start at rows `starts` (any shape): frame t, t+1, ... t+4
    side by side, as `autoencoder.stacked_vectors` lays them out. The pages of earlier reads
    are handed back first once they may exceed the bound."""
    self.release()
    rows = starts[..., None] + np.arange(FRAMES)
    self._touched += starts.size * FAULT_AROUND
    return self._frames[rows].reshape(*starts.shape, FRAMES * N_MELS)

  def clip_vectors(self, index: int) -> np.ndarray:
    """[T − 4, 640] every vector of clip `index`."""
    first, count = self._spans[index]
    return self.vectors(np.arange(first, first + count - FRAMES + 1))

  def release(self) -> None:
    """Hands the pages read so far back to the page cache (they leave this process's RSS)
    once they may add up to RESIDENT_BYTES."""
    if self._map is not None and min(self._touched, len(self._map)) >= RESIDENT_BYTES:
      self._map.madvise(mmap.MADV_DONTNEED)
      self._touched = 0

  def close(self) -> None:
    """Closes and deletes the file."""
    if self._map is not None:
      self._map.close()
      self._map = None
    self._file.close()
    if os.path.exists(self.path):
      os.remove(self.path)
