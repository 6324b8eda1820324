"""Banks read from each whole clip beside a branch's embedding, one registry.

A clip bank is a fixed feature of the clip's audio (no training changes it), read by the embed
stage, kept in the normal reference banks like an embedding, scored by its own Ledoit-Wolf
Mahalanobis distance (min over the section's banks), and its robust z added to its branch's
(scoring/systems.py). `score.clip_banks` in the config names the ones a run uses.

- fbank_level: the band level of the encoder's own input fbank over the whole clip (mean and
  standard deviation over time of each FBANK_BAND_BINS-bin band), the near and far channels of
  each band mixed by the model's gate of its patch row averaged over the clip's crops
  ('row_gate'); the near channel alone in the left-duplicated mode.
- logmel_level: the near channel's log-mel statistics over the whole clip (the baselines' front
  end, audio.logmel: 64-ms frames, 128 bins, per-bin mean and std), the log-mel reference's own
  features; the same in both channel modes.
Why each is there, and what it adds on held-out data: docs/heldout.md.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from asd_jax.audio import SAMPLE_RATE
from asd_jax.audio import fbank as fbank_lib
from asd_jax.audio import logmel, steps
from asd_jax.model.asd_model import LEFT_DUPLICATED, TWO_CHANNEL
from asd_jax.model.fusion import mean_and_std
# Mel bins per band of the fbank level: four bands to a 16-bin patch row (2, 4 and 8 were within
# 0.15 points of each other on seed 0 of held-out A-J; docs/heldout.md, "Fbank level").
FBANK_BAND_BINS = 4

# A reader is made once per model: reader(waves, row_gates [n, rows]) -> {mode: [n, F]}, waves
# a list of n clips' [2, S]; a clip it cannot read raises BadClip naming its position.
Reader = Callable[[list, np.ndarray], dict]


class BadClip(ValueError):
  """A reader's complaint about the clip at `position` of the waves it was given."""

  def __init__(self, position: int, message: str):
    super().__init__(message)
    self.position = position


@dataclasses.dataclass(frozen=True)
class ClipBank:
  name: str
  branch: str  # the branch whose Mahalanobis distance it joins
  make_reader: Callable[..., Reader]  # (model) -> reader; model: the branch's ASDModel
  min_samples: Callable[..., int]  # (model) -> the fewest 16-kHz samples a clip needs for it


def clip_band_level(fbank_pair, gate_of_row, band_bins: int, frames=None):
  """fbank_pair [B, 2, T, M] of whole clips, gate_of_row [B, rows] -> [B, 2·M/band_bins]: mean
  and standard deviation over time of each band of `band_bins` mel bins, the two channels of a
  band mixed by the gate of the patch row it lies in. Frames past the last whole patch, which
  the encoder drops, are dropped here too; so are frames from `frames` on (a scalar, traced or
  not: the clip's own frame count where the fbank runs on into zero padding)."""
  batch, _, total, bins = fbank_pair.shape
  rows = gate_of_row.shape[1]
  patch = bins // rows
  if band_bins <= 0 or patch % band_bins:
    raise ValueError(f'{band_bins}-bin bands do not tile the {patch}-bin patches of a '
                     f'{bins}-bin fbank')
  used = (total if frames is None else frames) // patch * patch
  bands = fbank_pair.reshape(batch, 2, total, bins // band_bins, band_bins).mean(-1)
  gate = jnp.repeat(gate_of_row, patch // band_bins, axis=1)[:, None]  # [B, 1, bands]
  return mean_and_std(gate * bands[:, 0] + (1 - gate) * bands[:, 1],
                      where=(jnp.arange(total) < used)[None, :, None])


def fbank_level_min_samples(model) -> int:
  """The fewest samples whose whole-clip fbank holds one patch of frames."""
  patch = model.encoder.config.patch_size
  return fbank_lib.FRAME_LENGTH + (patch - 1) * fbank_lib.FRAME_SHIFT


def fbank_level_reader(model) -> Reader:
  """The fbank level in both channel modes; clips zero-padded to a few lengths share a compile
  (audio.steps.LENGTH_BUCKET), the frames past their own left out by count.
  Clips go through one call each, all dispatched before the first result is read: one call on
  the whole batch was slower on this project's CPU (46-49 against 38-40 ms for the fbanks of 16
  two-channel 10-s clips)."""
  if model.preset.remove_clip_mean or model.preset.num_frames is not None:
    raise ValueError('the fbank level zero-pads clips, which would change a fbank that removes '
                     'the clip mean or has a fixed frame count')

  @jax.jit
  def levels(wave, gate_of_row, frames):  # [2, S], [rows], the clip's own frames -> [2 modes, F]
    pair = fbank_lib.encoder_fbank(wave, model.preset, model.num_mel_bins)[None]
    gates = jnp.stack([gate_of_row, jnp.ones_like(gate_of_row)])
    return clip_band_level(jnp.concatenate([pair, pair]), gates, FBANK_BAND_BINS, frames)

  fewest = fbank_level_min_samples(model)

  def read(waves, row_gates):
    for position, wave in enumerate(waves):
      if wave.shape[1] < fewest:
        raise BadClip(position, too_short(wave.shape[1], fewest, 'the whole-clip fbank level'))
    pending = [levels(steps.pad_to_bucket(wave), gate_of_row,
                      fbank_lib.num_frames(wave.shape[1]))
               for wave, gate_of_row in zip(waves, row_gates)]
    two_channel, left_duplicated = np.asarray(jax.device_get(pending)).swapaxes(0, 1)
    return {TWO_CHANNEL: two_channel, LEFT_DUPLICATED: left_duplicated}

  return read


def logmel_level_reader(model) -> Reader:
  """The near channel's log-mel statistics, the same in both channel modes; clips of one length
  in one `logmel.log_mel` call."""
  del model  # the baselines' front end, not the encoder's

  def read(waves, row_gates):
    del row_gates
    level = logmel.wave_statistics(waves, channel=0).astype(np.float32)
    return {TWO_CHANNEL: level, LEFT_DUPLICATED: level}

  return read


def too_short(samples: int, fewest: int, needs: str) -> str:
  return (f'{samples} samples ({samples / SAMPLE_RATE:.3f} s) are too short: {needs} needs at '
          f'least {fewest} ({fewest / SAMPLE_RATE:.3f} s)')


REGISTRY = {bank.name: bank for bank in (
    ClipBank('fbank_level', 'beats', fbank_level_reader, fbank_level_min_samples),
    ClipBank('logmel_level', 'beats', logmel_level_reader, lambda model: 1),
)}


def of_branch(names, branch: str) -> list[ClipBank]:
  """The banks among `names` (config.score.clip_banks) that join `branch`."""
  return [REGISTRY[name] for name in names if REGISTRY[name].branch == branch]


def bank_name(branch: str, clip_bank: str | None = None) -> str:
  """The name of a reference bank: the branch's own for its embedding, '<branch>_<clip bank>'
  for a clip bank (the embedding cache files are named after it)."""
  return branch if clip_bank is None else f'{branch}_{clip_bank}'


def output_bank(branch: str, output: str) -> str:
  """The bank name of one of embed.extract's outputs ('embedding' or a clip bank's name)."""
  return bank_name(branch, None if output == 'embedding' else output)
