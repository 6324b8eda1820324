"""The baselines' log-mel in jnp against librosa itself (the official baselines' front end)."""
import librosa
import numpy as np
import pytest

from asd_jax.audio import logmel, steps

# Measured: ≤ 2.1e-5 dB on noise, tones and silence (librosa's own float32 against its float64:
# ≤ 1.5e-6); the bound leaves room for other FFT builds.
TOLERANCE_DB = 1e-4


def librosa_log_mel(samples: np.ndarray) -> np.ndarray:
  power = librosa.feature.melspectrogram(y=samples, sr=16000, n_fft=1024, hop_length=512,
                                         n_mels=128, power=2.0)
  return 10.0 * np.log10(np.maximum(power, np.finfo(np.float64).eps))


def waves(length: int) -> np.ndarray:
  """[4, length]: noise rising from silence, a 50-Hz hum over faint noise with a DC offset, a
  1-kHz tone, and digital silence."""
  rng = np.random.default_rng(length)
  t = np.arange(length) / 16000
  return np.stack([
      rng.uniform(-0.5, 0.5, length) * np.linspace(0, 1, length),
      0.3 + 0.5 * np.sin(2 * np.pi * 50 * t) + 1e-4 * rng.standard_normal(length),
      0.1 * np.sin(2 * np.pi * 1000 * t),
      np.zeros(length)]).astype(np.float32)


@pytest.mark.filterwarnings('ignore:n_fft=1024 is too large')  # librosa's, on the 700 samples
@pytest.mark.parametrize('length', [64000, 16000 * 3 + 123, 700])
def test_log_mel_matches_librosa(length):
  """Whole hops, a ragged end, and a clip shorter than one frame (all padding but 700
  samples); a batch in one call, each row against librosa."""
  rows = waves(length)
  got = logmel.log_mel(rows)
  assert got.shape == (4, 128, 1 + length // 512) and got.dtype == np.float32
  for row, wave in zip(got, rows):
    np.testing.assert_allclose(row, librosa_log_mel(wave), rtol=0, atol=TOLERANCE_DB)


def test_rows_in_steps_match_librosa(monkeypatch):
  """Steps of three rows and a remainder of one (the host's CPU loops over the rows even where
  the suite's eight devices keep the fbank from it)."""
  rows = waves(2 * steps.LENGTH_BUCKET)
  monkeypatch.setattr(logmel, 'CPU_FRAMES_PER_STEP', 3 * (1 + rows.shape[1] // 512))
  logmel._log_mel_rows.clear_cache()  # the step size is read when the call is traced
  try:
    got = logmel.log_mel(rows)
  finally:
    logmel._log_mel_rows.clear_cache()
  for row, wave in zip(got, rows):
    np.testing.assert_allclose(row, librosa_log_mel(wave), rtol=0, atol=TOLERANCE_DB)


def test_lengths_in_one_bucket_share_a_compile():
  logmel._log_mel_rows.clear_cache()
  for length in (steps.LENGTH_BUCKET + 100, 2 * steps.LENGTH_BUCKET - 1, 2 * steps.LENGTH_BUCKET):
    logmel.log_mel(np.zeros((2, length), np.float32))
  assert logmel._log_mel_rows._cache_size() == 1


def test_leading_axes_and_statistics():
  """[..., S] keeps its leading axes; the statistics are the per-bin mean and std over time."""
  rows = waves(8000).reshape(2, 2, -1)
  frames = logmel.log_mel(rows)
  assert frames.shape == (2, 2, 128, 16)
  stats = logmel.frame_statistics(frames)
  np.testing.assert_allclose(stats[1, 0, :128], frames[1, 0].astype(np.float64).mean(-1))
  np.testing.assert_allclose(stats[1, 0, 128:], frames[1, 0].astype(np.float64).std(-1))
