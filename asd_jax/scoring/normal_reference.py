"""Branch scores of test clips and of the normal reference (training) clips, per machine type.

BEATs: Ledoit-Wolf Mahalanobis to a source bank and a target bank per section, minimum taken;
training clips are scored out-of-fold (their own bank refitted without their fold).
AudioMAE: mean cosine distance to the k nearest of one global bank per machine type; training
clips are scored leave-one-out. The reference scores are what robust z is fitted on — never the
test distribution.
"""
from __future__ import annotations

import logging

import numpy as np

from asd_jax.scoring.distances import knn_score, min_mahalanobis
from asd_jax.scoring.ledoit_wolf import fit_ledoit_wolf


def _banks(keys: list) -> dict:
  banks: dict = {}
  for i, key in enumerate(keys):
    banks.setdefault(key, []).append(i)
  return banks


def mahalanobis_scores(train: np.ndarray, train_keys: list, test: np.ndarray, test_sections: list,
                       folds: int = 5) -> tuple[np.ndarray, np.ndarray]:
  """(reference [n_train], test [n_test]) with banks keyed (section, domain).

  A test clip takes the minimum over its section's banks. A bank of fewer than 2 clips cannot
  hold a covariance and is left out (logged); a section with no usable bank is an error.
  """
  banks = _banks(train_keys)
  fitted = {}
  for key, rows in banks.items():
    if len(rows) < 2:
      logging.warning('bank %s has %d clip(s); left out of the Mahalanobis banks', key, len(rows))
      continue
    fitted[key] = fit_ledoit_wolf(train[rows])

  def section_banks(section, skip=None):
    return [g for key, g in fitted.items() if key[0] == section and key != skip]

  test_scores = np.empty(len(test))
  for section in set(test_sections):
    rows = [i for i, s in enumerate(test_sections) if s == section]
    chosen = section_banks(section)
    if not chosen:
      raise ValueError(f'section {section}: no normal bank with at least 2 clips')
    test_scores[rows] = min_mahalanobis(test[rows], chosen)
  reference = np.empty(len(train))
  for key, rows in banks.items():
    rows = np.asarray(rows)
    fold_of = np.arange(len(rows)) % min(folds, len(rows))
    for fold in np.unique(fold_of):
      held, rest = rows[fold_of == fold], rows[fold_of != fold]
      chosen = section_banks(key[0], skip=key)
      if len(rest) >= 2:
        chosen = chosen + [fit_ledoit_wolf(train[rest])]
      if not chosen:
        raise ValueError(f'bank {key}: too few clips for out-of-fold reference scores')
      reference[held] = min_mahalanobis(train[held], chosen)
  return reference, test_scores


def knn_scores(train: np.ndarray, test: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
  """(reference leave-one-out [n_train], test [n_test]) against one global bank."""
  return knn_score(train, train, k, exclude_self=True), knn_score(test, train, k)
