"""Kaldi-compatible log-mel filterbank in jnp (torchaudio.compliance.kaldi.fbank semantics).

One batched, jittable core (`kaldi_fbank`) and the two front ends the encoders need:
`beats_fbank` (x 2^15, povey window, BEATs normalisation) and `audiomae_fbank` (mean removal,
Hann window, pad/truncate to 1024 frames in the log domain, AudioMAE normalisation).
Shapes are static: the number of frames is a Python int derived from the waveform length.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from asd_jax.audio import SAMPLE_RATE, steps

FRAME_LENGTH = 400  # 25 ms at 16 kHz
FRAME_SHIFT = 160  # 10 ms at 16 kHz
FFT_SIZE = 512  # next power of two above the frame length
PREEMPHASIS = 0.97
LOW_FREQ = 20.0
LOG_FLOOR = float(np.finfo(np.float32).eps)


@dataclasses.dataclass(frozen=True)
class FbankPreset:
  """How one encoder turns a waveform in [-1, 1] into its normalised fbank."""
  window: str  # 'povey' (Hann^0.85) or 'hanning' (Hann), both non-periodic
  input_scale: float  # BEATs multiplies by 2^15 (int16 range); AudioMAE does not
  remove_clip_mean: bool  # AudioMAE subtracts the waveform mean before framing
  norm_mean: float
  norm_std: float  # output is (fbank - mean) / (2 * std)
  num_frames: int | None  # AudioMAE pads/truncates to a fixed frame count; None keeps all


BEATS = FbankPreset(window='povey', input_scale=2.0**15, remove_clip_mean=False,
                    norm_mean=15.41663, norm_std=6.55582, num_frames=None)
AUDIOMAE = FbankPreset(window='hanning', input_scale=1.0, remove_clip_mean=True,
                       norm_mean=-4.2677393, norm_std=4.5689974, num_frames=1024)


def num_frames(num_samples: int) -> int:
  """Frames Kaldi produces with snip_edges=True: 1 + (S - 400) // 160, or 0."""
  if num_samples < FRAME_LENGTH:
    return 0
  return 1 + (num_samples - FRAME_LENGTH) // FRAME_SHIFT


@functools.lru_cache(maxsize=None)
def mel_filterbank(num_mel_bins: int = 128) -> np.ndarray:
  """Triangular Kaldi mel filters on the power spectrum, [FFT_SIZE // 2 + 1, num_mel_bins].

  Kaldi spaces the triangles evenly on the 1127·ln(1 + f/700) scale from 20 Hz to Nyquist and
  leaves the Nyquist bin with zero weight. The triangle edges are evaluated in float32, as
  torchaudio does: near an edge a weight is a small difference of large mel values, and float64
  weights would move the narrow low-frequency bins by up to 3e-4 in log energy.
  """
  f32 = np.float32
  nyquist = SAMPLE_RATE / 2
  mel_low = 1127.0 * math.log(1.0 + LOW_FREQ / 700.0)
  mel_high = 1127.0 * math.log(1.0 + nyquist / 700.0)
  delta = (mel_high - mel_low) / (num_mel_bins + 1)
  bins = np.arange(num_mel_bins)[:, None]
  left, center, right = ((mel_low + (bins + i) * delta).astype(f32) for i in range(3))
  fft_freqs = (f32(SAMPLE_RATE / FFT_SIZE) * np.arange(FFT_SIZE // 2)).astype(f32)
  fft_mel = (f32(1127.0) * np.log(f32(1.0) + fft_freqs / f32(700.0)))[None, :]
  up = (fft_mel - left) / (center - left)
  down = (right - fft_mel) / (right - center)
  weights = np.maximum(f32(0.0), np.minimum(up, down))
  weights = np.concatenate([weights, np.zeros((num_mel_bins, 1), f32)], axis=1)
  return weights.T.astype(f32)


@functools.lru_cache(maxsize=None)
def frame_window(kind: str) -> np.ndarray:
  """Non-periodic Hann window of one frame, raised to 0.85 for Kaldi's 'povey'."""
  n = np.arange(FRAME_LENGTH)
  hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / (FRAME_LENGTH - 1))
  if kind == 'povey':
    return (hann**0.85).astype(np.float32)
  if kind == 'hanning':
    return hann.astype(np.float32)
  raise ValueError(f'unknown window {kind!r}; expected povey or hanning')


# Frames in one step of kaldi_fbank on a single CPU device (audio.steps): 2048 frames ~ 12 MB
# of frames, spectra and powers.
CPU_FRAMES_PER_STEP = 2048


def kaldi_fbank(wave: jnp.ndarray, window: str = 'povey', num_mel_bins: int = 128) -> jnp.ndarray:
  """Log-mel energies of `wave` [..., S] (already scaled as the encoder expects) -> [..., T, mel].

  dither 0, per-frame DC removal, pre-emphasis 0.97 (first sample against itself), window,
  zero-pad to 512, |rfft|^2, mel filters, log floored at float32 eps; T = 1 + (S - 400) // 160.
  The steps and their order are torchaudio's, in float32. On one CPU device the rows go
  through in steps of about CPU_FRAMES_PER_STEP frames (audio.steps).
  """
  frames_count = num_frames(wave.shape[-1])
  if frames_count == 0:
    raise ValueError(f'a clip needs at least {FRAME_LENGTH} samples (25 ms at 16 kHz) for one '
                     f'fbank frame; got {wave.shape[-1]}')
  rows = wave.reshape(-1, wave.shape[-1])

  def fbank_of(some_rows):
    return _log_mel(steps.frames(some_rows, FRAME_LENGTH, FRAME_SHIFT, frames_count), window,
                    num_mel_bins)

  per_step = CPU_FRAMES_PER_STEP // frames_count if steps.in_steps() else rows.shape[0]
  fbank = steps.map_rows(fbank_of, rows, per_step)
  return fbank.reshape(*wave.shape[:-1], frames_count, num_mel_bins)


def _log_mel(frames: jnp.ndarray, window: str, num_mel_bins: int) -> jnp.ndarray:
  """Raw frames [B, T, 400] -> floored log-mel energies [B, T, mel]."""
  frames = frames - frames.mean(axis=-1, keepdims=True)
  emphasised = jnp.concatenate([frames[..., :1] * (1.0 - PREEMPHASIS),
                                frames[..., 1:] - PREEMPHASIS * frames[..., :-1]], axis=-1)
  spectrum = jnp.fft.rfft(emphasised * frame_window(window), n=FFT_SIZE, axis=-1)
  power = spectrum.real**2 + spectrum.imag**2
  mel = jnp.einsum('btf,fm->btm', power, mel_filterbank(num_mel_bins), precision='highest')
  return jnp.log(jnp.maximum(mel, LOG_FLOOR))


def encoder_fbank(wave: jnp.ndarray, preset: FbankPreset, num_mel_bins: int = 128) -> jnp.ndarray:
  """Normalised fbank an encoder consumes: waveform [B, S] in [-1, 1] -> [B, T, mel]."""
  with jax.named_scope('front_end'):  # the op-kind profile (benchmarks/profile_ops.py)
    wave = jnp.asarray(wave, jnp.float32)
    if preset.remove_clip_mean:
      wave = wave - wave.mean(axis=-1, keepdims=True)
    fbank = kaldi_fbank(wave * preset.input_scale, preset.window, num_mel_bins)
    if preset.num_frames is not None:
      missing = preset.num_frames - fbank.shape[1]
      if missing > 0:
        fbank = jnp.pad(fbank, ((0, 0), (0, missing), (0, 0)))
      fbank = fbank[:, :preset.num_frames]
    return (fbank - preset.norm_mean) / (2.0 * preset.norm_std)


def beats_fbank(wave: jnp.ndarray) -> jnp.ndarray:
  """BEATs input features [B, T, 128] for a waveform batch [B, S] in [-1, 1]."""
  return encoder_fbank(wave, BEATS)


def audiomae_fbank(wave: jnp.ndarray) -> jnp.ndarray:
  """AudioMAE input features [B, 1024, 128] for a waveform batch [B, S] in [-1, 1]."""
  return encoder_fbank(wave, AUDIOMAE)
