"""DCASE Task 2 metrics, as the official evaluator computes them (DESIGN §6).

Per (machine, section): AUC (source) over source-domain normals and ALL anomalies, AUC (target)
over target-domain normals and ALL anomalies, pAUC over all clips with max FPR 0.1 (sklearn's
McClish-standardised partial AUC), and from the decision files precision, recall and F1 per
domain over that domain's clips. The official score is the harmonic mean of every AUC (source),
AUC (target) and pAUC value together. Names are the official evaluator's column names.
"""
from __future__ import annotations

import dataclasses
import sys

import numpy as np
from sklearn.metrics import roc_auc_score

DOMAINS = ('source', 'target')
# The three values the official score is the harmonic mean of (the report's Table 1 rows).
METRICS = ('AUC (source)', 'AUC (target)', 'pAUC')
OFFICIAL_SCORE = 'official score'
# The official evaluator's per-section columns, in its order.
SECTION_COLUMNS = ('AUC (all)', 'AUC (source)', 'AUC (target)', 'pAUC', 'precision (source)',
                   'precision (target)', 'recall (source)', 'recall (target)',
                   'F1 score (source)', 'F1 score (target)')
MAX_FPR = 0.1
_EPS = sys.float_info.epsilon


@dataclasses.dataclass(frozen=True)
class SectionResult:
  machine: str
  section: str
  values: dict  # column name (SECTION_COLUMNS) -> value in [0, 1]


def decision_scores(labels, decisions) -> tuple[float, float, float]:
  """(precision, recall, F1) of 0/1 decisions, with the official evaluator's eps guards."""
  labels, decisions = np.asarray(labels), np.asarray(decisions)
  tp = float(np.sum((labels == 1) & (decisions == 1)))
  fp = float(np.sum((labels == 0) & (decisions == 1)))
  fn = float(np.sum((labels == 1) & (decisions == 0)))
  precision = tp / max(tp + fp, _EPS)
  recall = tp / max(tp + fn, _EPS)
  return precision, recall, 2.0 * precision * recall / max(precision + recall, _EPS)


def section_metrics(labels, scores, domains, decisions=None,
                    max_fpr: float = MAX_FPR) -> dict[str, float]:
  """labels 1 = anomaly, scores higher = more anomalous, domains 'source'/'target' per clip,
  decisions 0/1 per clip (or None: no precision/recall/F1). A section lacking normals of a
  domain or anomalies raises: its mean would silently lose a term."""
  labels, scores, domains = map(np.asarray, (labels, scores, domains))
  if not (labels == 1).any():
    raise ValueError('the section has no anomalous clips')
  out = {'AUC (all)': float(roc_auc_score(labels, scores))}
  for domain in DOMAINS:
    if not ((domains == domain) & (labels == 0)).any():
      raise ValueError(f'the section has no {domain}-domain normal clips, so AUC ({domain}) '
                       'cannot be computed')
    keep = (domains == domain) | (labels == 1)
    out[f'AUC ({domain})'] = float(roc_auc_score(labels[keep], scores[keep]))
  out['pAUC'] = float(roc_auc_score(labels, scores, max_fpr=max_fpr))
  if decisions is not None:
    decisions = np.asarray(decisions)
    for domain in DOMAINS:
      mine = domains == domain
      precision, recall, f1 = decision_scores(labels[mine], decisions[mine])
      out[f'precision ({domain})'] = precision
      out[f'recall ({domain})'] = recall
      out[f'F1 score ({domain})'] = f1
  return out


def hmean(values) -> float:
  """Harmonic mean with every value floored at float eps, as the official evaluator takes it."""
  values = np.asarray(list(values), np.float64)
  if len(values) == 0:
    return float('nan')
  return float(len(values) / np.sum(1.0 / np.maximum(values, _EPS)))


def domain_rows(results: list[SectionResult]) -> dict[str, list[float]]:
  """The official evaluator's per-kind value lists over sections: AUC = every AUC (source)
  then every AUC (target); pAUC listed twice (once per domain); precision, recall, F1 likewise.
  Kinds without values (no decision files) are left out."""
  rows = {'AUC': [r.values['AUC (source)'] for r in results] +
                 [r.values['AUC (target)'] for r in results],
          'pAUC': [r.values['pAUC'] for r in results] * 2}
  for kind in ('precision', 'recall', 'F1 score'):
    if all(f'{kind} (source)' in r.values for r in results):
      rows[kind] = [r.values[f'{kind} ({d})'] for d in DOMAINS for r in results]
  return rows


def summarise(results: list[SectionResult]) -> dict[str, float]:
  """Per-metric harmonic means over sections, and the official score over all values."""
  summary = {m: hmean(r.values[m] for r in results) for m in METRICS}
  summary[OFFICIAL_SCORE] = hmean(r.values[m] for r in results for m in METRICS)
  return summary
