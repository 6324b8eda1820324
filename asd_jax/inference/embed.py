"""Embeddings of every clip for a trained branch, in a channel mode, cached on disk.

The cache (W/embeddings/<branch>_<mode>.npz) records the identity of its inputs (clip files,
sizes and times, the checkpoint step, the evaluation audio settings); a mismatch means stale,
recomputed.
"""
from __future__ import annotations

import hashlib
import io
import json
import os

import jax
import numpy as np

from asd_jax.data import pipeline
from asd_jax.data.layout import Clip
from asd_jax.io import atomic_write_bytes
from asd_jax.scoring.systems import EXTRA_OUTPUTS, LEFT_DUPLICATED, TWO_CHANNEL

MODEL_OUTPUTS = ('embedding', *EXTRA_OUTPUTS)


def inputs_identity(clips: list[Clip], settings: list) -> str:
  """Digest of what a stage's outputs depend on: the clip files (path, size, time) and the
  stage's settings (anything JSON can write)."""
  digest = hashlib.sha1()
  for clip in clips:
    stat = os.stat(clip.path)
    digest.update(f'{clip.path}|{stat.st_size}|{stat.st_mtime_ns}\n'.encode())
  digest.update(json.dumps(settings).encode())
  return digest.hexdigest()


def embedding_identity(clips: list[Clip], step: int, audio: pipeline.AudioConfig,
                       mode: str) -> str:
  """Identity of a branch's cached embeddings: clips, checkpoint step, evaluation audio, mode."""
  return inputs_identity(clips, [step, audio.clip_seconds, audio.mono, audio.eval_windows, mode])


def model_outputs(predict, params, clips: list[Clip], audio: pipeline.AudioConfig,
                  batch_size: int, num_workers: int = 0, progress: bool = False,
                  desc: str = 'predict') -> dict[str, np.ndarray]:
  """Every output of `predict(params, wave [B, 2, S]) -> {name: [B, ...]}` for all clips, in
  evaluation mode (no augmentation), each the mean over the clip's `audio.eval_windows` crops;
  rows in the order of `clips`."""
  from tqdm import tqdm
  records = [{'path': c.path, 'sample_rate': c.sample_rate, 'index': i}
             for i, c in enumerate(clips)]
  batches = pipeline.padded_batches(
      pipeline.eval_dataset(records, audio, batch_size, num_workers), batch_size)
  out: dict[str, np.ndarray] = {}
  for batch in tqdm(batches, total=-(-len(clips) // batch_size), desc=desc, unit='batch',
                    disable=not progress):
    wave = batch['wave']  # [B, W, 2, S]
    rows, windows = wave.shape[:2]
    valid = batch['valid']
    outputs = jax.device_get(predict(params, wave.reshape(rows * windows, *wave.shape[2:])))
    for name, value in outputs.items():
      value = value.reshape(rows, windows, *value.shape[1:]).mean(axis=1)
      if name not in out:
        out[name] = np.zeros((len(clips), *value.shape[1:]), value.dtype)
      out[name][batch['index'][valid]] = value[valid]
  return out


def extract(model, params, clips: list[Clip], audio: pipeline.AudioConfig, batch_size: int,
            num_workers: int = 0, progress: bool = True) -> dict[tuple[str, str], np.ndarray]:
  """{(output, mode): [len(clips), E]} of a trained model in both channel modes (two-channel and
  left-duplicated) from one encoder pass over both channels; outputs are MODEL_OUTPUTS the model
  has. With several JAX processes each embeds every P-th clip on its own devices and all of them
  receive the whole table (an all-gather)."""
  def predict(p, wave):
    out = model.apply({'params': p}, wave, left_duplicated=True)
    return {(name, mode): out[name if mode == TWO_CHANNEL else f'{name}_left_duplicated']
            for name in outputs_of(model) for mode in (TWO_CHANNEL, LEFT_DUPLICATED)}

  processes, index = jax.process_count(), jax.process_index()
  mine = model_outputs(jax.jit(predict), params, clips[index::processes], audio, batch_size,
                       num_workers, progress and index == 0, 'embed')
  if processes == 1:
    return mine
  return {key: gather_strided(rows, len(clips)) for key, rows in mine.items()}


def outputs_of(model) -> tuple[str, ...]:
  """What a branch's model puts in the banks: its embedding, and its pooled patch level,
  projected patch embedding, fbank level and fbank modulation when it has them."""
  return tuple(name for name in MODEL_OUTPUTS if name == 'embedding' or getattr(model, name))


def gather_strided(mine: np.ndarray, total: int) -> np.ndarray:
  """Rows i ≡ p (mod P) computed by process p -> all `total` rows, in order, on every process."""
  from jax.experimental import multihost_utils
  processes = jax.process_count()
  rows = -(-total // processes)
  padded = np.zeros((rows, *mine.shape[1:]), mine.dtype)
  padded[:len(mine)] = mine
  every = np.asarray(multihost_utils.process_allgather(padded))  # [P, rows, ...]
  return every.swapaxes(0, 1).reshape(rows * processes, *mine.shape[1:])[:total]


def load_cached(path: str, identity: str) -> np.ndarray | None:
  """The embeddings cached at `path` when their identity matches, else None (stale or absent)."""
  if not os.path.exists(path):
    return None
  with np.load(path) as cached:
    return cached['embeddings'] if str(cached['identity']) == identity else None


def write_cached(path: str, identity: str, embeddings: np.ndarray) -> None:
  """Writes the cache atomically (process 0 only: shared outputs have one writer)."""
  if jax.process_index() != 0:
    return
  buffer = io.BytesIO()
  np.savez(buffer, embeddings=embeddings, identity=np.array(identity))
  atomic_write_bytes(path, buffer.getvalue())
