"""Signal primitives of the synthetic machine sounds (built-in set, held-out sets, pre-training
corpus): noises, tones, struck resonances, rooms. All take a NumPy Generator, so every clip is
deterministic for its seed."""
from __future__ import annotations

import numpy as np

from asd_jax.audio import SAMPLE_RATE


def bandpass_noise(rng, n, low, high):
  spectrum = np.fft.rfft(rng.standard_normal(n))
  freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
  spectrum[(freqs < low) | (freqs > high)] = 0
  out = np.fft.irfft(spectrum, n)
  return out / (out.std() + 1e-12)


def pink_noise(rng, n):
  spectrum = np.fft.rfft(rng.standard_normal(n))
  freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
  spectrum /= np.sqrt(np.maximum(freqs, 20.0))
  out = np.fft.irfft(spectrum, n)
  return out / (out.std() + 1e-12)


def impulse_train(rng, t, rate, resonance, decay, jitter=0.02):
  """Decaying resonances struck at `rate` Hz (with timing jitter)."""
  out = np.zeros_like(t)
  period = 1.0 / rate
  ring = np.arange(int(0.02 * SAMPLE_RATE)) / SAMPLE_RATE
  kernel = np.exp(-ring * decay) * np.sin(2 * np.pi * resonance * ring)
  start = rng.uniform(0, period)
  for hit in np.arange(start, t[-1], period):
    i = int((hit + rng.normal(0, jitter * period)) * SAMPLE_RATE)
    if 0 <= i < len(t):
      seg = kernel[:len(t) - i]
      out[i:i + len(seg)] += seg * rng.uniform(0.7, 1.3)
  return out


def harmonics(rng, t, f0, count, decay=1.0, drift=0.004):
  phase_noise = np.cumsum(rng.normal(0, drift, len(t))) * 0.05
  return sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi) + phase_noise * h)
             / h**decay for h in range(1, count + 1))


def room_response(rng: np.random.Generator, rt60: float) -> np.ndarray:
  """Exponentially decaying noise tail: a small room between machine and far microphone."""
  n = int(rt60 * SAMPLE_RATE)
  tail = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
  tail[0] = 1.0
  return tail / np.sqrt(np.sum(tail**2))


def resonate(x: np.ndarray, freqs, bandwidths, gains=None) -> np.ndarray:
  """x through a bank of resonant modes (Lorentzian peaks in the spectrum, i.e. exponentially
  decaying sinusoids), normalised to unit std; one FFT whatever the number of modes."""
  spectrum = np.fft.rfft(x)
  f = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
  gains = np.ones(len(freqs)) if gains is None else gains
  response = sum(g / (1 + ((f - fc) / bw)**2) for fc, bw, g in zip(freqs, bandwidths, gains))
  out = np.fft.irfft(spectrum * response, len(x))
  return out / (out.std() + 1e-12)
