"""Grain input pipeline shared by training and embedding extraction.

record -> read stereo WAV (soundfile) -> resample to 16 kHz (soxr) -> crop / zero-pad
(random crop in training; in evaluation `eval_windows` crops spread over the clip) -> augment
(training only: channel swap, per-channel gain, channel dropout) -> batch {'wave': [B, 2, S]
float32 in training, [B, W, 2, S] in evaluation, label ids}.
Randomness comes from Grain's per-record generators, so batches are identical for a seed with
any number of worker processes, differ across epochs, and the iterator state (Grain's own)
checkpoints and restores exactly.
"""
from __future__ import annotations

import atexit
import dataclasses
import functools
import gc
import threading
from typing import Iterator

import grain.python as grain
import numpy as np
import soundfile as sf
from absl import flags

from asd_jax.audio import SAMPLE_RATE
from asd_jax.data import audio_check
from asd_jax.data.labels import LabelSpace
from asd_jax.data.layout import Clip, DatasetError

# How far ahead the training iterator reads: its elements are whole batches, and Grain's
# default (500 elements on 16 threads) would decode thousands of clips ahead of the step.
BATCH_READ_AHEAD = grain.ReadOptions(num_threads=2, prefetch_buffer_size=2)


@dataclasses.dataclass(frozen=True)
class AudioConfig:
  """How a clip becomes the fixed-size two-channel input."""
  clip_seconds: float = 10.0
  mono: str = 'error'  # 'duplicate' copies a single channel to both inputs; 'error' refuses
  swap_prob: float = 0.5  # channel swap (training only)
  gain_db: float = 6.0  # per-channel gain drawn uniformly in ±gain_db (training only)
  channel_dropout_prob: float = 0.1  # zero one channel (training only)
  # Evaluation crops per clip, evenly spaced from its start to its end (1 = the centred crop);
  # the model's outputs are averaged over them, so a clip longer than the input is seen whole.
  eval_windows: int = 1

  def __post_init__(self):
    if self.eval_windows < 1:
      raise ValueError(f'eval_windows must be at least 1, got {self.eval_windows}')

  @property
  def num_samples(self) -> int:
    return int(round(self.clip_seconds * SAMPLE_RATE))


def clip_records(clips: list[Clip], labels: LabelSpace) -> list[dict]:
  """Picklable per-clip records: path, rate and the label ids (index = position in `clips`)."""
  return [{'path': c.path, 'sample_rate': c.sample_rate, 'index': i, **labels.encode(c)}
          for i, c in enumerate(clips)]


class RecordSource(grain.RandomAccessDataSource):
  """The records as a Grain random-access source (copied into each worker process)."""

  def __init__(self, records: list[dict]):
    self._records = records

  def __len__(self) -> int:
    return len(self._records)

  def __getitem__(self, index: int) -> dict:
    return dict(self._records[index])


_FIRST_READ = threading.Lock()
_first_read_done = False


def _sf_read(path: str) -> tuple[np.ndarray, int]:
  """soundfile.read, with a process's first successful read made under a lock: cffi 2.x
  realizes its C types lazily and, on GIL builds, without a lock (python-cffi/cffi#271), so two
  Grain reader threads making a fresh worker process's first reads at once crashed it (SIGABRT
  in realize_c_type). Later reads use the realized types and run in parallel."""
  global _first_read_done
  if _first_read_done:
    return sf.read(path, dtype='float32', always_2d=True)
  with _FIRST_READ:
    result = sf.read(path, dtype='float32', always_2d=True)
    _first_read_done = True
    return result


def read_wave(path: str, mono: str) -> np.ndarray:
  """Stereo float32 [2, S] at 16 kHz from any WAV soundfile reads."""
  try:
    samples, rate = _sf_read(path)
  except (RuntimeError, sf.LibsndfileError) as e:
    raise DatasetError(audio_check.unreadable(path, e)) from e
  if samples.shape[1] == 1:
    if mono != 'duplicate':
      raise DatasetError(f'{path}: mono file; the system expects two channels (near, far); set '
                         "data.mono='duplicate' to copy the channel")
    samples = np.repeat(samples, 2, axis=1)
  elif samples.shape[1] != 2:
    raise DatasetError(f'{path}: {samples.shape[1]} channels; expected 2 (near, far)')
  if rate != SAMPLE_RATE:
    import soxr
    samples = soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float32)
  return np.ascontiguousarray(samples.T)


def fit_length(wave: np.ndarray, length: int, offset: int) -> np.ndarray:
  """Crop [C, S] at `offset` or zero-pad at the end to exactly `length` samples."""
  if wave.shape[1] >= length:
    return wave[:, offset:offset + length]
  return np.pad(wave, ((0, 0), (0, length - wave.shape[1])))


def window_offsets(num_samples: int, window: int, count: int) -> list[int]:
  """Starts of `count` crops of `window` samples spread evenly from the first sample to the last
  (one crop is centred); all 0 when the clip is no longer than the window."""
  room = max(0, num_samples - window)
  if count == 1:
    return [room // 2]
  return [int(round(room * i / (count - 1))) for i in range(count)]


def eval_windows(wave: np.ndarray, audio: AudioConfig) -> np.ndarray:
  """[W, C, num_samples]: the `audio.eval_windows` crops of a [C, S] wave (zero-padded when
  shorter)."""
  length = audio.num_samples
  return np.stack([fit_length(wave, length, offset)
                   for offset in window_offsets(wave.shape[1], length, audio.eval_windows)])


class LoadEvalWindows(grain.MapTransform):
  """Evaluation: [W, C, num_samples], the clip's `eval_windows` crops (zero-padded when
  shorter)."""

  def __init__(self, audio: AudioConfig):
    self.audio = audio

  def map(self, record: dict) -> dict:
    record['wave'] = eval_windows(read_wave(record.pop('path'), self.audio.mono), self.audio)
    del record['sample_rate']
    return record


class LoadRandomCropAugmented(grain.RandomMapTransform):
  """Training: a random window, then channel swap, per-channel gain and channel dropout."""

  def __init__(self, audio: AudioConfig):
    self.audio = audio

  def random_map(self, record: dict, rng: np.random.Generator) -> dict:
    a = self.audio
    wave = read_wave(record.pop('path'), a.mono)
    offset = int(rng.integers(0, max(1, wave.shape[1] - a.num_samples + 1)))
    wave = fit_length(wave, a.num_samples, offset)
    if rng.uniform() < a.swap_prob:
      wave = wave[::-1]
    gains = 10.0**(rng.uniform(-a.gain_db, a.gain_db, size=(2, 1)) / 20.0)
    wave = wave * gains.astype(np.float32)
    if rng.uniform() < a.channel_dropout_prob:
      wave = wave.copy()
      wave[rng.integers(0, 2)] = 0.0
    record['wave'] = np.ascontiguousarray(wave, dtype=np.float32)
    del record['sample_rate']
    return record


def _grain_ready() -> None:
  """Grain's worker processes read absl flags; outside an absl app (tests, notebooks) the
  defaults are taken as parsed."""
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _prefetch(dataset: grain.IterDataset, num_workers: int) -> grain.IterDataset:
  """Decode in `num_workers` processes; Grain interleaves their outputs back in order, so
  batches do not depend on the worker count."""
  if num_workers <= 0:
    return dataset
  _unlink_shared_memory_at_exit()
  return dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))


@functools.cache
def _unlink_shared_memory_at_exit() -> None:
  """Worker processes hand batches over in shared memory, which Grain unlinks on a background
  thread once a batch is dropped. A process that ended right after its last batch (`asd-jax
  train`) cut that thread short, and Python's resource tracker warned of leaked shared_memory
  objects (Grain issue 398). So at exit, once the last batches are collected, wait for it."""
  def wait_for_unlinks():
    gc.collect()
    unlinker = grain.SharedMemoryArray._del_thread_pool  # Grain has no public hook for it
    if unlinker is not None:
      unlinker.apply(int)  # one thread, first in first out: every earlier unlink has run
  atexit.register(wait_for_unlinks)


def train_dataset(records: list[dict], audio: AudioConfig, batch_size: int, seed: int,
                  num_workers: int = 0, shard_by_process: bool = True) -> grain.IterDataset:
  """Endless training batches of this JAX process: reshuffled every epoch, random crops and
  augmentation drawn from per-record generators (seed, epoch, position). `batch_size` is the
  global batch; with several processes each yields its contiguous slice of every global batch
  (process p: rows p·b .. (p+1)·b − 1, b = batch_size / processes), so the global batches, and
  the trained parameters, do not depend on how many processes share the work. Without
  `shard_by_process` every process yields the whole global batches."""
  import jax
  _grain_ready()
  processes, index = (jax.process_count(), jax.process_index()) if shard_by_process else (1, 0)
  if batch_size % processes:
    raise DatasetError(f'batch size {batch_size} does not split over {processes} processes')
  if len(records) < batch_size:
    raise DatasetError(f'{len(records)} training clips are fewer than the batch size '
                       f'{batch_size}')
  dataset = (grain.MapDataset.source(RecordSource(records)).seed(seed).shuffle().repeat(None)
             .random_map(LoadRandomCropAugmented(audio)))
  local = dataset.batch(batch_size // processes, drop_remainder=True)[index::processes]
  return _prefetch(local.to_iter_dataset(BATCH_READ_AHEAD), num_workers)


def eval_dataset(records: list[dict], audio: AudioConfig, batch_size: int,
                 num_workers: int = 0) -> grain.IterDataset:
  """One ordered pass, `audio.eval_windows` crops per clip, no augmentation; the last batch is
  short (see `padded_batches`)."""
  _grain_ready()
  dataset = grain.MapDataset.source(RecordSource(records)).map(LoadEvalWindows(audio))
  return _prefetch(dataset.to_iter_dataset(), num_workers).batch(batch_size,
                                                                 drop_remainder=False)


def padded_batches(dataset: grain.IterDataset, batch_size: int) -> Iterator[dict]:
  """Batches of exactly `batch_size` (one compiled shape); padding rows have valid=False."""
  for batch in dataset:
    size = len(batch['index'])
    batch['valid'] = np.ones(size, bool)
    if size < batch_size:
      batch = {k: np.concatenate([v, np.zeros((batch_size - size, *v.shape[1:]), v.dtype)])
               for k, v in batch.items()}
    yield batch
