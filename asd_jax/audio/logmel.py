"""The official DCASE baselines' front end: librosa's log-mel (128 bins, n_fft 1024, hop 512,
Hann window, centred frames, power 2, 10·log10) computed in jnp. The autoencoder baselines, the
log-mel reference detector and the BEATs branch's log-mel bank (scoring/clip_banks.py) all read
clips through it. tests/test_logmel.py holds it to librosa's own values."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from asd_jax.audio import SAMPLE_RATE, steps

N_MELS, N_FFT, HOP = 128, 1024, 512
# librosa floors the mel power at float64's eps before the log.
POWER_FLOOR = float(np.finfo(np.float64).eps)
# Frames in one step (audio.steps): one 10-s clip, two 4-s clips. 16 × 10 s: 20 ms, against
# 66 ms at once and librosa's 28-31 ms.
CPU_FRAMES_PER_STEP = 320


def log_mel(samples: np.ndarray) -> np.ndarray:
  """[..., S] samples at 16 kHz -> [..., 128, T] float32 log-mel (dB), T = 1 + S // 512: what
  `librosa.feature.melspectrogram(y, sr=16000, n_fft=1024, hop_length=512, n_mels=128)` and
  10·log10 give. A batch of equal-length clips goes in one call. It runs on the host's CPU
  whatever the default device, as librosa did: TPUs have no float64 FFT, and the baselines'
  features stay the same on every platform."""
  samples = np.asarray(samples, np.float32)
  length = samples.shape[-1]
  rows = steps.pad_to_bucket(samples.reshape(-1, length))  # frames past T are dropped
  # The FFT in float64, as librosa's (_rows_log_mel).
  with jax.enable_x64(True), jax.default_device(jax.local_devices(backend='cpu')[0]):
    out = np.asarray(_log_mel_rows(rows))[..., :1 + length // HOP]
  return out.reshape(*samples.shape[:-1], N_MELS, out.shape[-1])


@jax.jit
def _log_mel_rows(rows: jnp.ndarray) -> jnp.ndarray:
  count = 1 + rows.shape[1] // HOP
  return steps.map_rows(functools.partial(_rows_log_mel, count=count), rows,
                        CPU_FRAMES_PER_STEP // count)


def _rows_log_mel(rows: jnp.ndarray, count: int) -> jnp.ndarray:
  """[B, S] -> [B, 128, count]. librosa centres the frames (n_fft / 2 zeros at each end). It
  windows in float64 and keeps the FFT's float64 result as complex64: a float32 FFT's rounding
  is relative to the frame's loudest bin, and left mel bands 100 dB below a pure tone's up to
  20 dB off."""
  padded = jnp.pad(rows, ((0, 0), (N_FFT // 2, N_FFT // 2)))
  frames = steps.frames(padded, N_FFT, HOP, count) * _window()
  spectrum = jnp.fft.rfft(frames, axis=-1).astype(jnp.complex64)
  power = spectrum.real**2 + spectrum.imag**2
  mel = jnp.einsum('btf,fm->bmt', power, _mel_filters(), precision='highest')
  return 10.0 * jnp.log10(jnp.maximum(mel, POWER_FLOOR))


@functools.lru_cache(maxsize=None)
def _mel_filters() -> np.ndarray:
  """librosa's Slaney mel filters, [513, 128] float32."""
  import librosa
  return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS).T


@functools.lru_cache(maxsize=None)
def _window() -> np.ndarray:
  """librosa's periodic Hann window of one frame (float64)."""
  import librosa
  return librosa.filters.get_window('hann', N_FFT, fftbins=True)


def clip_log_mel(path: str, channel: int = 0, mono: str = 'duplicate') -> np.ndarray:
  """[128, T] log-mel of one channel of a clip file."""
  from asd_jax.data.pipeline import read_wave
  return log_mel(read_wave(path, mono)[channel])


def wave_statistics(waves, channel: int = 0) -> np.ndarray:
  """[n, 256] `frame_statistics` of one channel of each wave ([C, S] arrays): the log-mel
  reference's features, and the BEATs branch's log-mel bank. Waves of one length go through
  one `log_mel` call."""
  out = np.empty((len(waves), 2 * N_MELS))
  for length in {wave.shape[1] for wave in waves}:
    rows = [i for i, wave in enumerate(waves) if wave.shape[1] == length]
    out[rows] = frame_statistics(log_mel(np.stack([waves[i][channel] for i in rows])))
  return out


def frame_statistics(frames: np.ndarray) -> np.ndarray:
  """[..., 256]: per-bin mean and standard deviation over time of a [..., 128, T] log-mel, in
  float64."""
  frames = np.asarray(frames, np.float64)
  return np.concatenate([frames.mean(axis=-1), frames.std(axis=-1)], axis=-1)
