"""Embeddings of every clip for a trained branch, in both channel modes (the job keeps them in
W/embeddings/<bank>_<mode>.npy, redone when their stage's inputs change: provenance.py)."""
from __future__ import annotations

from typing import Iterator

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
  records = [{'path': c.path, 'sample_rate': c.sample_rate, 'index': i}
             for i, c in enumerate(clips)]
  batches = pipeline.eval_dataset(records, audio, batch_size, num_workers)
  return collect_outputs(predict, params, batches, len(clips), batch_size, progress, desc)


def wave_batches(waves, audio: pipeline.AudioConfig, batch_size: int) -> Iterator[dict]:
  """The evaluation pipeline's batches ({'wave': [B, W, 2, S], 'index'}) from waves already in
  memory (each [2, samples] float32 at 16 kHz), cropped as LoadEvalWindows crops a file."""
  for start in range(0, len(waves), batch_size):
    rows = waves[start:start + batch_size]
    yield {'wave': np.stack([pipeline.eval_windows(np.asarray(w, np.float32), audio)
                             for w in rows]),
           'index': np.arange(start, start + len(rows))}


def collect_outputs(predict, params, batches, count: int, batch_size: int,
                    progress: bool = False, desc: str = 'predict') -> dict[str, np.ndarray]:
  """`predict`'s outputs over `batches` (padded to `batch_size`, one compiled shape), each row
  the mean over its crops, placed at the batch's 'index' rows of [count, ...] arrays."""
  from tqdm import tqdm
  out: dict[str, np.ndarray] = {}
  for batch in tqdm(pipeline.padded_batches(batches, batch_size), total=-(-count // batch_size),
                    desc=desc, unit='batch', disable=not progress):
    wave = batch['wave']  # [B, W, 2, S]
    rows, windows = wave.shape[:2]
    valid = batch['valid']
    outputs = jax.device_get(predict(params, wave.reshape(rows * windows, *wave.shape[2:])))
    for name, value in outputs.items():
      value = value.reshape(rows, windows, *value.shape[1:]).mean(axis=1)
      if name not in out:
        out[name] = np.zeros((count, *value.shape[1:]), value.dtype)
      out[name][batch['index'][valid]] = value[valid]
  return out


def predictor(model, with_row_gate: bool):
  """The jitted encoder pass: {(output, mode): [B, ...]} of both channel modes (two-channel and
  left-duplicated) from one pass over both channels, and the two-channel row gate that the clip
  banks need."""

  def predict(p, wave):
    out = model.apply({'params': p}, wave, left_duplicated=True)
    values = {('embedding', TWO_CHANNEL): out['embedding'],
              ('embedding', LEFT_DUPLICATED): out['embedding_left_duplicated']}
    if with_row_gate:
      values['row_gate', TWO_CHANNEL] = out['row_gate']
    return values

  return jax.jit(predict)


def extract(model, params, clips: list[Clip], audio: pipeline.AudioConfig, batch_size: int,
            banks: list[clip_banks.ClipBank] = (), num_workers: int = 0,
            progress: bool = True) -> dict[tuple[str, str], np.ndarray]:
  """{(output, mode): [len(clips), E]} of a trained model in both channel modes: 'embedding',
  and each clip bank of `banks` read from the whole clips. With several JAX processes each
  embeds every P-th clip on its own devices and all of them receive the whole table (an
  all-gather)."""
  processes, index = jax.process_count(), jax.process_index()
  mine_clips = clips[index::processes]
  show = progress and index == 0
  mine = model_outputs(predictor(model, bool(banks)), params, mine_clips, audio, batch_size,
                       num_workers, show, 'embed')
  if banks:
    mine.update(read_clip_banks(bank_readers(model, banks),
                                (pipeline.read_wave(c.path, audio.mono) for c in mine_clips),
                                [c.path for c in mine_clips],
                                mine.pop(('row_gate', TWO_CHANNEL)), show))
  if processes == 1:
    return mine
  return {key: gather_strided(rows, len(clips)) for key, rows in mine.items()}


def bank_readers(model, banks: list[clip_banks.ClipBank]) -> dict:
  return {bank.name: bank.make_reader(model) for bank in banks}


def read_clip_banks(readers: dict, waves, names: list[str], row_gates: np.ndarray,
                    progress: bool = False, chunk: int = 16) -> dict[tuple[str, str], np.ndarray]:
  """{(bank name, mode): [len(names), F]}: each clip bank (`readers`, by name) read from each
  whole clip's wave ([2, S], from the iterable `waves`: decoded once for all banks, `chunk` clips
  at a time), given the clip's `row_gates` [len(names), rows] (its crops' gate per patch row);
  `names` name the clips in messages."""
  import itertools
  from tqdm import tqdm
  out: dict[tuple[str, str], np.ndarray] = {}
  waves = iter(waves)
  with tqdm(total=len(names), desc='clip banks', unit='clip', disable=not progress) as bar:
    for start in range(0, len(names), chunk):
      some = list(itertools.islice(waves, chunk))
      for bank, read in readers.items():
        try:
          values = read(some, row_gates[start:start + len(some)])
        except clip_banks.BadClip as e:
          raise pipeline.DatasetError(f'{names[start + e.position]}: {e}') from None
        for mode in CHANNEL_MODES:
          if (bank, mode) not in out:  # one array for all clips: per-clip rows would fragment
            first = np.asarray(values[mode])
            out[bank, mode] = np.empty((len(names), *first.shape[1:]), first.dtype)
          out[bank, mode][start:start + len(some)] = values[mode]
      bar.update(len(some))
  return out


def gather_strided(mine: np.ndarray, total: int) -> np.ndarray:
  """Rows i ≡ p (mod P) computed by process p -> all `total` rows, in order, on every process."""
  from jax.experimental import multihost_utils
  processes = jax.process_count()
  rows = -(-total // processes)
  padded = np.zeros((rows, *mine.shape[1:]), mine.dtype)
  padded[:len(mine)] = mine
  every = np.asarray(multihost_utils.process_allgather(padded))  # [P, rows, ...]
  return every.swapaxes(0, 1).reshape(rows * processes, *mine.shape[1:])[:total]
