"""The pre-training corpus: many randomised machine families, rooms, distances and noises.

The shipped tiny encoders learn their acoustic priors here (asd_jax/pretrained/MODEL_CARD.md).
Every clip draws a new unit of its family (speeds, resonances, harmonic weights, duty cycles)
and an operating point, so no two clips share a machine. The families are generic mechanisms
written for this corpus only; none of them is a family that an evaluation uses (the built-in
fan / bearing / valve / gearbox of asd_jax/data/machine_families.py and the held-out families
of research/heldout/families.py), and tests/test_research.py checks that the names stay apart.
"""
from __future__ import annotations

import numpy as np
from scipy import signal as scipy_signal

from asd_jax.audio import SAMPLE_RATE
from asd_jax.data import signals


def _tone_stack(rng, t, f0, count, tilt):
  """Harmonics of f0 (a drifting f0: `t`-long array or scalar) with random weights."""
  phase = 2 * np.pi * np.cumsum(np.broadcast_to(f0, t.shape)) / SAMPLE_RATE
  weights = rng.uniform(0.2, 1.0, count) / np.arange(1, count + 1)**tilt
  return sum(w * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
             for h, w in zip(range(1, count + 1), weights) if h * np.max(f0) < 7800)


def _modes(rng, count, low, high, q_low=5, q_high=60):
  freqs = np.exp(rng.uniform(np.log(low), np.log(high), count))
  return freqs, freqs / rng.uniform(q_low, q_high, count), rng.uniform(0.3, 1.0, count)


def _strikes(rng, n, times, strength=None):
  out = np.zeros(n)
  idx = (np.asarray(times) * SAMPLE_RATE).astype(int)
  idx = idx[(idx >= 0) & (idx < n)]
  out[idx] = rng.uniform(0.6, 1.4, len(idx)) if strength is None else strength
  return out


def motor(rng, t, op):
  """Induction motor: rotation harmonics, rotor-slot tones, inverter (PWM) whine, hum."""
  n = len(t)
  rot = rng.uniform(10, 60) * (0.6 + 0.8 * op)
  x = _tone_stack(rng, t, rot, 8, 1.0)
  x = x + rng.uniform(0.1, 0.6) * np.sin(2 * np.pi * rot * rng.integers(17, 47) * t)
  if rng.uniform() < 0.6:
    carrier = rng.uniform(2000, 7000)
    x = x + rng.uniform(0.05, 0.4) * np.sin(2 * np.pi * carrier * t) * (
        1 + 0.5 * np.sin(2 * np.pi * 2 * rot * t))
  x = x + rng.uniform(0.05, 0.3) * _tone_stack(rng, t, rng.choice([50.0, 60.0]), 6, 0.5)
  return x + rng.uniform(0.05, 0.4) * signals.pink_noise(rng, n)


def transformer(rng, t, op):
  """Mains hum: even harmonics of 50/60 Hz whose weights follow the load, faint buzz."""
  mains = rng.choice([50.0, 60.0])
  x = _tone_stack(rng, t, 2 * mains, 10, 0.3 + 1.5 * (1 - op))
  return x + rng.uniform(0.02, 0.2) * signals.bandpass_noise(rng, len(t), 100, 4000)


def turbine(rng, t, op):
  """Blade passing in the kHz range (two stages, beating) over a broadband roar."""
  n = len(t)
  bpf = rng.uniform(800, 3500) * (0.7 + 0.6 * op)
  x = _tone_stack(rng, t, bpf, 3, 1.2)
  x = x + rng.uniform(0.2, 0.8) * _tone_stack(rng, t, bpf * rng.uniform(1.1, 1.6), 2, 1.0)
  roar = signals.resonate(rng.standard_normal(n), *_modes(rng, 3, 200, 3000, 1, 4))
  return x + rng.uniform(0.5, 2.0) * roar


def press(rng, t, op):
  """Heavy periodic impacts (0.5–6 Hz) ringing a handful of structural modes."""
  n = len(t)
  rate = rng.uniform(0.5, 3.0) * (0.6 + 1.2 * op)
  times = np.arange(rng.uniform(0, 1 / rate), t[-1], 1 / rate)
  hits = _strikes(rng, n, times + rng.normal(0, 0.01, len(times)))
  x = signals.resonate(hits, *_modes(rng, rng.integers(3, 8), 80, 6000, 10, 200))
  return x + rng.uniform(0.02, 0.3) * signals.pink_noise(rng, n)


def flow(rng, t, op):
  """Turbulent flow in a duct: noise through broad modes, slowly modulated."""
  n = len(t)
  x = signals.resonate(rng.standard_normal(n), *_modes(rng, rng.integers(2, 6), 100, 6000, 1, 8))
  gust = 1 + rng.uniform(0, 0.5) * np.sin(2 * np.pi * rng.uniform(0.2, 3) * t
                                          + rng.uniform(0, 6.3))
  return x * gust * (0.5 + op)


def engine(rng, t, op):
  """Combustion engine: firing pulses through formants, one weak cylinder at random."""
  n = len(t)
  rate = rng.uniform(15, 90) * (0.6 + 0.8 * op)
  cylinders = int(rng.integers(2, 7))
  times = np.arange(rng.uniform(0, 1 / rate), t[-1], 1 / rate)
  strength = rng.uniform(0.7, 1.0, cylinders)[np.arange(len(times)) % cylinders]
  pulses = _strikes(rng, n, times, strength)
  x = signals.resonate(pulses, *_modes(rng, 4, 80, 2500, 2, 15))
  return x + rng.uniform(0.05, 0.3) * signals.bandpass_noise(rng, n, 1000, 7000)


def saw(rng, t, op):
  """Blade whine whose pitch sags under a varying load, with cutting-noise bursts."""
  n = len(t)
  load = np.clip(op + 0.3 * np.sin(2 * np.pi * rng.uniform(0.2, 1.5) * t), 0, 1)
  f0 = rng.uniform(100, 800) * (1 - 0.15 * load)
  x = _tone_stack(rng, t, f0, 10, 0.8)
  cut = signals.bandpass_noise(rng, n, rng.uniform(500, 2000), rng.uniform(3000, 7500))
  return x + load * rng.uniform(0.3, 1.5) * cut


def hydraulic(rng, t, op):
  """Pump ripple (piston count × shaft rate) with a high whine and valve hiss."""
  n = len(t)
  ripple = rng.uniform(100, 400) * (0.7 + 0.6 * op)
  x = _tone_stack(rng, t, ripple, 12, 0.7)
  x = x + rng.uniform(0.1, 0.5) * np.sin(2 * np.pi * rng.uniform(1500, 5000) * t)
  return x + rng.uniform(0.05, 0.4) * signals.bandpass_noise(rng, n, 3000, 7800)


def cycler(rng, t, op):
  """Any tonal-plus-noise source switched on and off with start/stop transients."""
  n = len(t)
  period = rng.uniform(0.3, 2.0)
  duty = np.clip(0.2 + 0.6 * op + rng.normal(0, 0.05), 0.1, 0.9)
  on = ((t + rng.uniform(0, period)) % period < duty * period).astype(float)
  on = np.convolve(on, np.ones(int(rng.uniform(40, 800))) / 800, mode='same')
  on = on / (on.max() + 1e-9)
  f0 = rng.uniform(40, 400)
  source = _tone_stack(rng, t, f0 * (0.8 + 0.2 * on), 6, 1.0)
  source = source + rng.uniform(0.2, 1.0) * signals.pink_noise(rng, n)
  return on * source + 0.05 * signals.pink_noise(rng, n)


def rattle(rng, t, op):
  """Loose parts: impacts at random (Poisson) times on small resonances, over a hum."""
  n = len(t)
  count = rng.poisson((5 + 40 * op) * t[-1])
  hits = _strikes(rng, n, rng.uniform(0, t[-1], count))
  x = signals.resonate(hits, *_modes(rng, rng.integers(2, 6), 1000, 7500, 5, 50))
  return x + rng.uniform(0.1, 1.0) * _tone_stack(rng, t, rng.uniform(30, 200), 5, 1.0)


def modulated(rng, t, op):
  """A tone complex under amplitude and frequency modulation (belts, unbalanced rotors)."""
  n = len(t)
  rate = rng.uniform(0.5, 30)
  f0 = rng.uniform(80, 1500) * (1 + rng.uniform(0, 0.05) * np.sin(2 * np.pi * rate * t))
  am = 1 + rng.uniform(0.2, 0.9) * np.sin(2 * np.pi * rate * (0.5 + op) * t)
  return am * _tone_stack(rng, t, f0, 6, 1.0) + rng.uniform(0.05, 0.5) * signals.pink_noise(rng, n)


def resonator(rng, t, op):
  """A structure's modes excited by broadband noise (casings, panels)."""
  n = len(t)
  modes = _modes(rng, rng.integers(4, 12), 100, 7000, 20, 300)
  return signals.resonate(rng.standard_normal(n), *modes) * (0.5 + op)


FAMILIES = {f.__name__: f for f in (motor, transformer, turbine, press, flow, engine, saw,
                                    hydraulic, cycler, rattle, modulated, resonator)}


def microphones(source: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """[2, n]: a near and a far microphone at random distances in a random room, each with its
  own noise (pink, white or band-limited) at a random level; peak-normalised to a random
  level."""
  n = len(source)
  source = source / (source.std() + 1e-12)
  near = source * rng.uniform(0.5, 1.0)
  delay = int(rng.uniform(0.001, 0.02) * SAMPLE_RATE)
  room = signals.room_response(rng, rng.uniform(0.05, 0.8))
  far = scipy_signal.fftconvolve(source, room)[:n] * rng.uniform(0.1, 0.6)
  far = np.concatenate([np.zeros(delay), far[:n - delay]])
  channels = []
  for x in (near, far):
    kind = rng.integers(3)
    if kind == 0:
      noise = signals.pink_noise(rng, n)
    elif kind == 1:
      noise = rng.standard_normal(n)
    else:
      low = rng.uniform(50, 2000)
      noise = signals.bandpass_noise(rng, n, low, low * rng.uniform(2, 8))
    channels.append(x + 10**rng.uniform(-2.5, -0.3) * noise)
  stereo = np.stack(channels)
  return rng.uniform(0.1, 0.9) * stereo / (np.abs(stereo).max() + 1e-9)


def corpus_clip(seed: int, index: int, seconds: float) -> np.ndarray:
  """Clip `index` of the corpus [2, seconds·16 kHz] float32: family, unit and operating point
  drawn from (seed, index) alone, so any part of the corpus can be rebuilt."""
  rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
  names = sorted(FAMILIES)
  family = FAMILIES[names[index % len(names)]]
  t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
  return microphones(family(rng, t, rng.uniform()), rng).astype(np.float32)
