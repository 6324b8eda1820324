"""Robust z calibration from normal reference scores only, fusion, and decision thresholds."""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.stats

MAD_TO_STD = 1.4826


@dataclasses.dataclass(frozen=True)
class RobustZ:
  """z = (s − median) / (1.4826·MAD) of the normal reference scores.

  A reference with zero MAD (e.g. mostly identical scores) falls back to the standard deviation,
  and to 1 when that is zero too, so z stays finite.
  """
  median: float
  scale: float

  @classmethod
  def fit(cls, reference: np.ndarray) -> 'RobustZ':
    reference = np.asarray(reference, np.float64)
    median = float(np.median(reference))
    scale = MAD_TO_STD * float(np.median(np.abs(reference - median)))
    if scale <= 0:
      scale = float(reference.std()) or 1.0
    return cls(median, scale)

  def __call__(self, scores):
    return (np.asarray(scores, np.float64) - self.median) / self.scale


def gamma_threshold(reference: np.ndarray, quantile: float = 0.9) -> float:
  """The official baseline's decision threshold: the `quantile` of a gamma distribution fitted
  to the normal reference scores. Calibrated scores can be negative, so they are shifted to start
  just above zero before fitting and the threshold is shifted back."""
  reference = np.asarray(reference, np.float64)
  spread = float(reference.max() - reference.min()) or 1.0
  shift = float(reference.min()) - 1e-3 * spread
  shape, loc, scale = scipy.stats.gamma.fit(reference - shift, floc=0.0)
  return float(scipy.stats.gamma.ppf(quantile, shape, loc=loc, scale=scale) + shift)
