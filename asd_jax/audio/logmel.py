"""The official DCASE baselines' front end: librosa log-mel (128 bins, n_fft 1024, hop 512,
power 2, 10·log10). The autoencoder baselines, the log-mel reference detector and the BEATs
branch's log-mel bank (scoring/clip_banks.py) all read clips through it."""
from __future__ import annotations

import numpy as np

from asd_jax.audio import SAMPLE_RATE

N_MELS, N_FFT, HOP = 128, 1024, 512


def log_mel(samples: np.ndarray) -> np.ndarray:
  """[..., S] samples at 16 kHz -> [..., 128, T] log-mel (dB); a batch of equal-length clips in
  one call shares the mel filters and the STFT's setup (0.65x the time of one call a clip at
  16 x 10 s), with the same values."""
  import librosa
  with _one_blas_thread():
    mel = librosa.feature.melspectrogram(y=samples, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP,
                                         n_mels=N_MELS, power=2.0)
  return 10.0 * np.log10(np.maximum(mel, np.finfo(np.float64).eps))


_blas_controller = None


def _one_blas_thread():
  """Runs numpy's BLAS (librosa's mel projection) on one thread. OpenBLAS's workers keep
  spinning for about 0.1 s after each call, and log-mels are read between jitted calls (the
  clip banks between the embed batches, the AE baselines' test clips): on a 2-core CPU the spin
  took a core from XLA's next call, and the tiny BEATs forward after a 16-clip log-mel took
  123-149 ms against 96-101 (docs/performance.md, "Detector scoring")."""
  global _blas_controller
  if _blas_controller is None:  # after librosa's import, so SciPy's BLAS is among the libraries
    from threadpoolctl import ThreadpoolController
    _blas_controller = ThreadpoolController()
  return _blas_controller.limit(limits=1, user_api='blas')


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
  """[..., 256]: per-bin mean and standard deviation over time of a [..., 128, T] log-mel."""
  return np.concatenate([frames.mean(axis=-1), frames.std(axis=-1)], axis=-1)
