"""Embeddings of every clip for a trained branch, in both channel modes (the job keeps them in
W/embeddings/<bank>_<mode>.npy, redone when their stage's inputs change: provenance.py)."""
from __future__ import annotations

import jax
import numpy as np

from asd_jax.data import pipeline
from asd_jax.data.layout import Clip
from asd_jax.model.asd_model import CHANNEL_MODES, LEFT_DUPLICATED, TWO_CHANNEL
from asd_jax.scoring import clip_banks


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
            banks: list[clip_banks.ClipBank] = (), num_workers: int = 0,
            progress: bool = True) -> dict[tuple[str, str], np.ndarray]:
  """{(output, mode): [len(clips), E]} of a trained model in both channel modes (two-channel and
  left-duplicated) from one encoder pass over both channels: 'embedding', and each clip bank of
  `banks` read from the whole clips. With several JAX processes each embeds every P-th clip on
  its own devices and all of them receive the whole table (an all-gather)."""

  def predict(p, wave):
    out = model.apply({'params': p}, wave, left_duplicated=True)
    values = {('embedding', TWO_CHANNEL): out['embedding'],
              ('embedding', LEFT_DUPLICATED): out['embedding_left_duplicated']}
    if banks:
      values['row_gate', TWO_CHANNEL] = out['row_gate']
    return values

  processes, index = jax.process_count(), jax.process_index()
  mine_clips = clips[index::processes]
  show = progress and index == 0
  mine = model_outputs(jax.jit(predict), params, mine_clips, audio, batch_size, num_workers,
                       show, 'embed')
  if banks:
    mine.update(read_clip_banks(model, banks, mine_clips, audio.mono,
                                mine.pop(('row_gate', TWO_CHANNEL)), show))
  if processes == 1:
    return mine
  return {key: gather_strided(rows, len(clips)) for key, rows in mine.items()}


def read_clip_banks(model, banks: list[clip_banks.ClipBank], clips: list[Clip], mono: str,
                    row_gates: np.ndarray, progress: bool = False
                    ) -> dict[tuple[str, str], np.ndarray]:
  """{(bank name, mode): [len(clips), F]}: each clip bank read from each whole clip (decoded
  once for all banks), given the clip's `row_gates` [len(clips), rows] (its crops' gate per
  patch row)."""
  from tqdm import tqdm
  readers = {bank.name: bank.make_reader(model) for bank in banks}
  rows: dict[tuple[str, str], list] = {(name, mode): [] for name in readers
                                       for mode in CHANNEL_MODES}
  for clip, gate_of_row in tqdm(zip(clips, row_gates), total=len(clips), desc='clip banks',
                                unit='clip', disable=not progress):
    wave = pipeline.read_wave(clip.path, mono)
    for name, read in readers.items():
      try:
        values = read(wave, gate_of_row)
      except ValueError as e:
        raise pipeline.DatasetError(f'{clip.path}: {e}') from None
      for mode in CHANNEL_MODES:
        rows[name, mode].append(values[mode])
  return {key: np.stack(values) for key, values in rows.items()}


def gather_strided(mine: np.ndarray, total: int) -> np.ndarray:
  """Rows i ≡ p (mod P) computed by process p -> all `total` rows, in order, on every process."""
  from jax.experimental import multihost_utils
  processes = jax.process_count()
  rows = -(-total // processes)
  padded = np.zeros((rows, *mine.shape[1:]), mine.dtype)
  padded[:len(mine)] = mine
  every = np.asarray(multihost_utils.process_allgather(padded))  # [P, rows, ...]
  return every.swapaxes(0, 1).reshape(rows * processes, *mine.shape[1:])[:total]
