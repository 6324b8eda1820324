"""Branch scores of test clips and of the normal reference (training) clips, per machine type.

BEATs: Ledoit-Wolf Mahalanobis to a source bank and a target bank per section, minimum taken
(optionally of per-bank robust z); training clips are scored out-of-fold (their own bank
refitted without their fold).
AudioMAE: mean cosine distance to the k nearest of one global bank per machine type; training
clips are scored leave-one-out. The reference scores are what robust z is fitted on — never the
test distribution.
"""
from __future__ import annotations

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


def mahalanobis_scores(train: np.ndarray, train_keys: list, test: np.ndarray, test_sections: list,
                       folds: int = 5, bank_calibration: str = 'none'
                       ) -> tuple[np.ndarray, np.ndarray]:
  """(reference [n_train], test [n_test]) with banks keyed (section, domain).

  A test clip takes the minimum over its section's banks (report §4.1). bank_calibration
  'robust_z' first maps each bank's distances to robust z of that bank's own out-of-fold
  distances, so a 10-clip target bank and a 1000-clip source bank compete on one scale.
  A bank too small to fit (fewer than 2 clips; with 'robust_z', fewer than 3, which out-of-fold
  calibration needs) is left out (logged); a section with no usable bank is an error.
  """
  if bank_calibration not in BANK_CALIBRATIONS:
    raise ValueError(f'bank_calibration must be one of {BANK_CALIBRATIONS}, '
                     f'not {bank_calibration!r}')
  banks = {key: np.asarray(rows) for key, rows in _banks(train_keys).items()}
  own = {key: _own_bank_out_of_fold(train, rows, folds) for key, rows in banks.items()}
  fitted, calibrate = {}, {}
  for key, rows in banks.items():
    if len(rows) < 2 or (bank_calibration == 'robust_z' and np.isnan(own[key]).any()):
      logging.warning('bank %s has %d clip(s); left out of the Mahalanobis banks', key, len(rows))
      continue
    fitted[key] = fit_ledoit_wolf(train[rows])
    calibrate[key] = RobustZ.fit(own[key]) if bank_calibration == 'robust_z' else np.asarray

  def section_scores(x, section, skip=None) -> np.ndarray:
    """[Q, banks of the section] calibrated distances (`skip`: a bank to leave out)."""
    keys = [key for key in fitted if key[0] == section and key != skip]
    if not keys:
      return np.full((len(x), 0), np.inf)
    d = bank_mahalanobis(x, [fitted[key] for key in keys])
    return np.stack([calibrate[key](d[:, j]) for j, key in enumerate(keys)], axis=1)

  test_scores = np.empty(len(test))
  for section in set(test_sections):
    rows = [i for i, s in enumerate(test_sections) if s == section]
    scores = section_scores(test[rows], section)
    if scores.shape[1] == 0:
      raise ValueError(f'section {section}: no normal bank with enough clips (2; 3 with '
                       "bank_calibration='robust_z')")
    test_scores[rows] = scores.min(axis=1)
  reference = np.empty(len(train))
  for key, rows in banks.items():
    own_scaled = calibrate[key](own[key]) if key in fitted else own[key]
    scores = np.concatenate([section_scores(train[rows], key[0], skip=key), own_scaled[:, None]],
                            axis=1)
    scores = np.where(np.isnan(scores), np.inf, scores).min(axis=1)
    if not np.isfinite(scores).all():
      raise ValueError(f'bank {key}: too few clips for out-of-fold reference scores')
    reference[rows] = scores
  return reference, test_scores


def knn_scores(train: np.ndarray, test: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
  """(reference leave-one-out [n_train], test [n_test]) against one global bank."""
  return knn_score(train, train, k, exclude_self=True), knn_score(test, train, k)
