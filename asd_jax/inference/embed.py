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
import jax.numpy as jnp
import numpy as np

from asd_jax.audio import fbank as fbank_lib
from asd_jax.baselines.logmel_reference import clip_features
from asd_jax.data import pipeline
from asd_jax.data.layout import Clip
from asd_jax.io import atomic_write_bytes
from asd_jax.model.asd_model import FBANK_BAND_BINS
from asd_jax.model.fusion import clip_fbank_band_level
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


def embedding_identity(clips: list[Clip], step: int, audio: pipeline.AudioConfig, mode: str,
                       *output_settings) -> str:
  """Identity of a branch's cached embeddings: clips, checkpoint step, evaluation audio, mode,
  and the settings of the output itself (output_settings)."""
  return inputs_identity(clips, [step, audio.clip_seconds, audio.mono, audio.eval_windows, mode,
                                 *output_settings])


def output_settings(model, output: str) -> tuple:
  """What one output depends on beyond the clips, the step and the evaluation audio: where the
  fbank level is read (fbank_level_span)."""
  return (model.fbank_level_span,) if output == 'fbank_level' else ()


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
  whole_clip = model.level_over_clip
  from_crops = [name for name in outputs_of(model) if name not in model.read_from_whole_clips]

  def predict(p, wave):
    out = model.apply({'params': p}, wave, left_duplicated=True)
    values = {(name, mode): out[name if mode == TWO_CHANNEL else f'{name}_left_duplicated']
              for name in from_crops for mode in (TWO_CHANNEL, LEFT_DUPLICATED)}
    if whole_clip:
      values['fbank_row_gate', TWO_CHANNEL] = out['fbank_row_gate']
    return values

  processes, index = jax.process_count(), jax.process_index()
  mine_clips = clips[index::processes]
  mine = model_outputs(jax.jit(predict), params, mine_clips, audio, batch_size, num_workers,
                       progress and index == 0, 'embed')
  if whole_clip:
    mine.update(clip_fbank_levels(model, mine_clips, audio.mono,
                                  mine.pop(('fbank_row_gate', TWO_CHANNEL)),
                                  progress and index == 0))
  if model.logmel_level:
    mine.update(clip_logmel_levels(mine_clips, audio.mono, progress and index == 0))
  if processes == 1:
    return mine
  return {key: gather_strided(rows, len(clips)) for key, rows in mine.items()}


def clip_fbank_levels(model, clips: list[Clip], mono: str, row_gates: np.ndarray,
                      progress: bool = False) -> dict[tuple[str, str], np.ndarray]:
  """{('fbank_level', mode): [len(clips), 2·bins/FBANK_BAND_BINS]}: the BEATs fbank level read
  from each whole clip (fusion.clip_fbank_band_level), the channels mixed by the clip's
  `row_gates` [len(clips), rows] (its crops' gate per patch row) in the two-channel mode and the
  near channel alone in the left-duplicated one. One compile per clip length."""
  from tqdm import tqdm

  @jax.jit
  def levels(wave, gate_of_row):  # [2, S], [rows] -> [2 modes, F]
    pair = fbank_lib.encoder_fbank(wave, model.preset, model.num_mel_bins)[None]
    gates = jnp.stack([gate_of_row, jnp.ones_like(gate_of_row)])
    return clip_fbank_band_level(jnp.concatenate([pair, pair]), gates, FBANK_BAND_BINS)

  rows = []
  for clip, gate_of_row in tqdm(zip(clips, row_gates), total=len(clips), desc='clip level',
                                unit='clip', disable=not progress):
    wave = pipeline.read_wave(clip.path, mono)
    if fbank_lib.num_frames(wave.shape[1]) < model.num_mel_bins // row_gates.shape[1]:
      raise pipeline.DatasetError(f'{clip.path}: {wave.shape[1]} samples are shorter than one '
                                  'fbank patch; the whole-clip fbank level needs more')
    rows.append(np.asarray(levels(wave, gate_of_row)))
  both = np.stack(rows)
  return {('fbank_level', TWO_CHANNEL): both[:, 0], ('fbank_level', LEFT_DUPLICATED): both[:, 1]}


def clip_logmel_levels(clips: list[Clip], mono: str,
                       progress: bool = False) -> dict[tuple[str, str], np.ndarray]:
  """{('logmel_level', mode): [len(clips), 256]}: the near channel's log-mel statistics over each
  whole clip, the log-mel reference's own features (the baselines' front end: 64-ms frames, 128
  bins, per-bin mean and std). The same in both channel modes: the reference, whose features
  these are, reads the near channel alone."""
  from tqdm import tqdm
  levels = np.stack([clip_features(clip.path, 0, mono) for clip in tqdm(
      clips, desc='log-mel level', unit='clip', disable=not progress)]).astype(np.float32)
  return {('logmel_level', TWO_CHANNEL): levels, ('logmel_level', LEFT_DUPLICATED): levels}


def outputs_of(model) -> tuple[str, ...]:
  """What a branch's model puts in the banks: its embedding, and its pooled patch level,
  projected patch embedding, fbank level, fbank modulation and log-mel level when it has them."""
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
