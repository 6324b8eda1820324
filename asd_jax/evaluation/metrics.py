"""DCASE Task 2 metrics, as the official evaluator computes them (DESIGN §6).

Per (machine, section): AUC (source) over source-domain normals and ALL anomalies, AUC (target)
over target-domain normals and ALL anomalies, pAUC over all clips with max FPR 0.1 (sklearn's
McClish-standardised partial AUC), and from the decision files precision, recall and F1 per
domain over that domain's clips. The official score is the harmonic mean of every AUC (source),
AUC (target) and pAUC value together; its 95 % confidence half-width ('official score ci95')
is the jackknife's over every test clip pooled. Names are the official evaluator's column names.
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
OFFICIAL_CI95 = 'official score ci95'
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
  labels: np.ndarray | None = None  # the section's clips (1 = anomaly), for the pooled CI
  scores: np.ndarray | None = None


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


def leave_one_out_auc(labels, scores) -> np.ndarray:
  """[n] AUC of all clips but clip i, for every i, in O(n log n): AUC is the share of
  (anomaly, normal) pairs ordered right (ties count half), and leaving a clip out removes its
  pairs from that count and from the number of pairs."""
  labels, scores = np.asarray(labels) == 1, np.asarray(scores, np.float64)
  anomalous, normal = np.sort(scores[labels]), np.sort(scores[~labels])
  n_anomalous, n_normal = len(anomalous), len(normal)
  if n_anomalous < 2 or n_normal < 2:
    raise ValueError('the jackknife needs at least 2 anomalous and 2 normal clips')

  def pairs_won(values, others, ascending: bool) -> np.ndarray:
    below = np.searchsorted(others, values, 'left')
    not_above = np.searchsorted(others, values, 'right')
    won = below if ascending else len(others) - not_above
    return won + 0.5 * (not_above - below)

  anomaly_pairs = pairs_won(scores[labels], normal, ascending=True)
  normal_pairs = pairs_won(scores[~labels], anomalous, ascending=False)
  total = anomaly_pairs.sum()
  out = np.empty(len(scores))
  out[labels] = (total - anomaly_pairs) / ((n_anomalous - 1) * n_normal)
  out[~labels] = (total - normal_pairs) / (n_anomalous * (n_normal - 1))
  return out


def _partial_auc_sorted(scores, labels, max_fpr: float) -> float:
  """sklearn's McClish-standardised partial AUC of clips sorted by descending score: the ROC's
  area up to `max_fpr` (tied scores one diagonal step, the curve cut by interpolation)."""
  last_of_tie = np.append(np.flatnonzero(np.diff(scores)), len(scores) - 1)
  true_positives = np.cumsum(labels)[last_of_tie]
  false_positives = last_of_tie + 1 - true_positives
  fpr = np.append(0.0, false_positives / false_positives[-1])
  tpr = np.append(0.0, true_positives / true_positives[-1])
  stop = np.searchsorted(fpr, max_fpr, 'right')
  x = np.append(fpr[:stop], max_fpr)
  y = np.append(tpr[:stop], np.interp(max_fpr, fpr[stop - 1:stop + 1], tpr[stop - 1:stop + 1]))
  area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))
  least = 0.5 * max_fpr ** 2
  return 0.5 * (1 + (area - least) / (max_fpr - least))


def leave_one_out_pauc(labels, scores, max_fpr: float = MAX_FPR) -> np.ndarray:
  """[n] pAUC of all clips but one, for every clip (in descending-score order: the jackknife
  needs the values, not which clip each belongs to); one sort, then O(n) per clip."""
  labels, scores = np.asarray(labels) == 1, np.asarray(scores, np.float64)
  order = np.argsort(-scores, kind='stable')
  scores, labels = scores[order], labels[order].astype(np.int64)
  keep = np.ones(len(scores), bool)
  out = np.empty(len(scores))
  for i in range(len(scores)):
    keep[i] = False
    out[i] = _partial_auc_sorted(scores[keep], labels[keep], max_fpr)
    keep[i] = True
  return out


def jackknife_ci95(leave_one_out: np.ndarray) -> float:
  """Half-width of the 95 % interval from leave-one-out estimates θ_i, as the official evaluator
  takes it (Mesaros et al. 2019, §IV): t(0.975, n − 1) · sqrt(Σ(θ_i − mean θ)² / (n (n − 1)))."""
  import scipy.stats
  theta = np.asarray(leave_one_out, np.float64)
  n = len(theta)
  sigma = np.sqrt(np.sum((theta - theta.mean()) ** 2) / (n * (n - 1)))
  return float(abs(scipy.stats.t.ppf(0.025, n - 1)) * sigma)


def official_ci95(results: list[SectionResult]) -> float:
  """'official score ci95': the mean of the jackknife CI half-widths of AUC and pAUC over every
  test clip of every section pooled (what the official evaluator writes under the score)."""
  if any(r.labels is None for r in results):
    raise ValueError('the pooled CI needs every section\'s labels and scores')
  labels = np.concatenate([r.labels for r in results])
  scores = np.concatenate([r.scores for r in results])
  return float(np.mean([jackknife_ci95(leave_one_out_auc(labels, scores)),
                        jackknife_ci95(leave_one_out_pauc(labels, scores))]))
