"""Branch scores of test clips and of the normal reference (training) clips, per machine type.

BEATs: Ledoit-Wolf Mahalanobis to a source bank and a target bank per section, minimum taken
(optionally of per-bank robust z); training clips are scored out-of-fold (their own bank
refitted without their fold).
AudioMAE: mean cosine distance to the k nearest of one global bank per machine type; training
clips are scored leave-one-out. The reference scores are what robust z is fitted on — never the
test distribution.
"""
from __future__ import annotations

import dataclasses
import logging

import numpy as np

from asd_jax.scoring.calibration import RobustZ
from asd_jax.scoring.distances import bank_mahalanobis, knn_score
from asd_jax.scoring.ledoit_wolf import fit_ledoit_wolf

BANK_CALIBRATIONS = ('none', 'robust_z')


def _banks(keys: list) -> dict:
  banks: dict = {}
  for i, key in enumerate(keys):
    banks.setdefault(key, []).append(i)
  return banks


def _own_bank_out_of_fold(train: np.ndarray, rows: np.ndarray, folds: int) -> np.ndarray:
  """Distance of each clip of a bank to the bank refitted without the clip's fold; NaN for a bank
  of fewer than 3 clips (the rest of a fold would hold fewer than 2)."""
  out = np.full(len(rows), np.nan)
  fold_of = np.arange(len(rows)) % min(folds, len(rows))
  for fold in np.unique(fold_of):
    held, rest = fold_of == fold, rows[fold_of != fold]
    if len(rest) >= 2:
      out[held] = bank_mahalanobis(train[rows[held]], [fit_ledoit_wolf(train[rest])])[:, 0]
  return out


@dataclasses.dataclass(frozen=True)
class MahalanobisReference:
  """A machine type's fitted normal banks: {(section, domain): Gaussian}, each with its
  calibration (RobustZ of its own out-of-fold distances, or None: the raw distance). A clip of a
  section scores the minimum over that section's banks."""
  banks: dict
  calibrations: dict

  def bank_scores(self, x: np.ndarray, section: str, skip=None) -> np.ndarray:
    """[Q, banks of the section] calibrated distances (`skip`: a bank to leave out)."""
    keys = [key for key in self.banks if key[0] == section and key != skip]
    if not keys:
      return np.full((len(x), 0), np.inf)
    d = bank_mahalanobis(x, [self.banks[key] for key in keys])
    return np.stack([_calibrated(self.calibrations[key], d[:, j]) for j, key in enumerate(keys)],
                    axis=1)

  def score(self, x: np.ndarray, sections: list) -> np.ndarray:
    """[Q] minimum calibrated distance of each row to its section's banks."""
    out = np.empty(len(x))
    for section in sorted(set(sections)):
      rows = [i for i, s in enumerate(sections) if s == section]
      scores = self.bank_scores(x[rows], section)
      if scores.shape[1] == 0:
        raise _no_bank(section)
      out[rows] = scores.min(axis=1)
    return out


def _no_bank(section: str) -> ValueError:
  return ValueError(f'section {section}: no normal bank with enough clips (2; 3 with '
                    "bank_calibration='robust_z')")


def _calibrated(calibration, distances):
  return distances if calibration is None else calibration(distances)


def fit_mahalanobis(train: np.ndarray, train_keys: list, folds: int = 5,
                    bank_calibration: str = 'none') -> tuple[np.ndarray, MahalanobisReference]:
  """(reference scores [n_train], the fitted reference) with banks keyed (section, domain).

  bank_calibration 'robust_z' first maps each bank's distances to robust z of that bank's own
  out-of-fold distances, so a 10-clip target bank and a 1000-clip source bank compete on one
  scale. A bank too small to fit (fewer than 2 clips; with 'robust_z', fewer than 3, which
  out-of-fold calibration needs) is left out (logged). A training clip's reference score is
  the minimum over its section's other banks and its own bank refitted without its fold.
  """
  if bank_calibration not in BANK_CALIBRATIONS:
    raise ValueError(f'bank_calibration must be one of {BANK_CALIBRATIONS}, '
                     f'not {bank_calibration!r}')
  banks = {key: np.asarray(rows) for key, rows in _banks(train_keys).items()}
  own = {key: _own_bank_out_of_fold(train, rows, folds) for key, rows in banks.items()}
  fitted, calibrations = {}, {}
  for key, rows in banks.items():
    if len(rows) < 2 or (bank_calibration == 'robust_z' and np.isnan(own[key]).any()):
      logging.warning('bank %s has %d clip(s); left out of the Mahalanobis banks', key, len(rows))
      continue
    fitted[key] = fit_ledoit_wolf(train[rows])
    calibrations[key] = RobustZ.fit(own[key]) if bank_calibration == 'robust_z' else None
  unfitted = sorted({key[0] for key in banks} - {key[0] for key in fitted})
  if unfitted:
    raise _no_bank(unfitted[0])
  fitted_reference = MahalanobisReference(fitted, calibrations)
  reference = np.empty(len(train))
  for key, rows in banks.items():
    own_scaled = _calibrated(calibrations[key], own[key]) if key in fitted else own[key]
    scores = np.concatenate([fitted_reference.bank_scores(train[rows], key[0], skip=key),
                             own_scaled[:, None]], axis=1)
    scores = np.where(np.isnan(scores), np.inf, scores).min(axis=1)
    if not np.isfinite(scores).all():
      raise ValueError(f'bank {key}: too few clips for out-of-fold reference scores')
    reference[rows] = scores
  return reference, fitted_reference


def mahalanobis_scores(train: np.ndarray, train_keys: list, test: np.ndarray, test_sections: list,
                       folds: int = 5, bank_calibration: str = 'none'
                       ) -> tuple[np.ndarray, np.ndarray]:
  """(reference [n_train], test [n_test]): `fit_mahalanobis`, then each test clip's minimum over
  its section's banks (report §4.1); a section with no usable bank is an error."""
  reference, fitted = fit_mahalanobis(train, train_keys, folds, bank_calibration)
  return reference, fitted.score(test, test_sections)


@dataclasses.dataclass(frozen=True)
class KnnReference:
  """A machine type's one global bank of normal embeddings: a clip scores its mean cosine
  distance to the k nearest."""
  bank: np.ndarray
  k: int

  def score(self, x: np.ndarray, sections=None) -> np.ndarray:
    del sections  # one bank for every section
    return knn_score(x, self.bank, self.k)


def fit_knn(train: np.ndarray, k: int = 3) -> tuple[np.ndarray, KnnReference]:
  """(reference scores [n_train], leave-one-out against the bank; the bank)."""
  return knn_score(train, train, k, exclude_self=True), KnnReference(train, k)
