"""Machine families of the built-in synthetic dataset: how each sounds, its attributes, its faults.

A family is data the generator (`synthetic.generate`) takes as a registry, so other families
(the held-out sets of research/heldout/) plug in without the package knowing them.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from asd_jax.audio import SAMPLE_RATE
from asd_jax.data import signals

# (attribute name, source-domain values, target-domain values)
Attribute = tuple[str, tuple, tuple]


@dataclasses.dataclass(frozen=True)
class Family:
  """sound(attrs, anomaly or None, severity, rng, n) -> [n] near-field source signal;
  `stream` numbers the family's random streams, frozen so that adding a family changes no clip
  of another."""
  sound: Callable[..., np.ndarray]
  attributes: tuple[Attribute, Attribute]
  anomalies: tuple[str, ...]
  stream: int


def _wobble(rng) -> float:
  """Unit-to-unit and run-to-run speed variation."""
  return rng.uniform(0.98, 1.02)


def fan(attrs, anomaly, severity, rng, n):
  t = np.arange(n) / SAMPLE_RATE
  rot = attrs['spd'] * _wobble(rng)
  x = (signals.harmonics(rng, t, rot * attrs['bld'], 6)
       + 0.6 * signals.bandpass_noise(rng, n, 100, 3000))
  if anomaly == 'imbalance':
    x = x * (1 + severity * 0.25 * np.sin(2 * np.pi * rot * t))
  elif anomaly == 'blade_damage':
    x = x + severity * 0.15 * signals.harmonics(rng, t, rot, 3)
  return x


def bearing(attrs, anomaly, severity, rng, n):
  t = np.arange(n) / SAMPLE_RATE
  shaft = attrs['rpm'] * _wobble(rng)
  x = (0.5 * signals.harmonics(rng, t, shaft, 3)
       + 0.3 * attrs['load'] * signals.bandpass_noise(rng, n, 500, 6000))
  if anomaly == 'outer_race':
    x = x + severity * 0.5 * signals.impulse_train(rng, t, 3.6 * shaft, 3000, 400)
  elif anomaly == 'inner_race':
    hits = signals.impulse_train(rng, t, 5.4 * shaft, 4200, 500)
    x = x + severity * 0.5 * hits * (1 + 0.8 * np.sin(2 * np.pi * shaft * t))
  return x


def valve(attrs, anomaly, severity, rng, n):
  t = np.arange(n) / SAMPLE_RATE
  period = 0.25 * attrs['pat'] * _wobble(rng)
  phase = rng.uniform(0, period)
  if anomaly == 'stuck':  # irregular cycle: openings jitter and some never close
    phase_t = (t + phase + severity * 0.25 * period * np.sin(2 * np.pi * t / (3 * period)))
  else:
    phase_t = t + phase
  open_ = ((phase_t % period) < 0.4 * period).astype(float)
  open_ = np.convolve(open_, np.ones(80) / 80, mode='same')
  flow = signals.bandpass_noise(rng, n, 150 * attrs['flow'], 750 * attrs['flow'])
  edges = np.abs(np.diff(open_, prepend=open_[0]))
  clicks = edges * 60 * signals.bandpass_noise(rng, n, 2000, 7000)
  x = open_ * flow + clicks + 0.05 * signals.bandpass_noise(rng, n, 50, 500)
  if anomaly == 'leak':
    x = x + severity * 0.6 * (1 - open_) * signals.bandpass_noise(rng, n, 3000, 7500)
  return x


def gearbox(attrs, anomaly, severity, rng, n):
  t = np.arange(n) / SAMPLE_RATE
  shaft = attrs['rpm'] * _wobble(rng)
  mesh = shaft * attrs['teeth']
  side = 0.15 * (1 + (1.0 * severity if anomaly == 'wear' else 0))
  x = (signals.harmonics(rng, t, mesh, 3)
       + side * (np.sin(2 * np.pi * (mesh - shaft) * t) + np.sin(2 * np.pi * (mesh + shaft) * t))
       + 0.3 * signals.bandpass_noise(rng, n, 50, 4000))
  if anomaly == 'broken_tooth':
    x = x + severity * 0.5 * signals.impulse_train(rng, t, shaft, 1800, 300, jitter=0.0)
  elif anomaly == 'wear':
    x = x + severity * 0.15 * signals.bandpass_noise(rng, n, 1000, 5000)
  return x


# The built-in families; streams are their places in sorted order, as when they were first made.
BUILTIN = {
    'fan': Family(fan, (('spd', (18, 24), (21,)), ('bld', (5, 7), (6,))),
                  ('imbalance', 'blade_damage'), stream=1),
    'bearing': Family(bearing, (('rpm', (20, 28), (24,)), ('load', (1, 3), (2,))),
                      ('outer_race', 'inner_race'), stream=0),
    'valve': Family(valve, (('pat', (2, 4), (3,)), ('flow', (2, 4), (3,))), ('leak', 'stuck'),
                    stream=3),
    'gearbox': Family(gearbox, (('rpm', (15, 21), (18,)), ('teeth', (21, 27), (24,))),
                      ('broken_tooth', 'wear'), stream=2),
}
