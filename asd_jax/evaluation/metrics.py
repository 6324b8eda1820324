"""DCASE Task 2 metrics, as the official evaluator computes them (DESIGN §6).

Per (machine, section): AUC(source) over source-domain normals and ALL anomalies, AUC(target)
over target-domain normals and ALL anomalies, pAUC over all clips with max FPR 0.1
(sklearn's McClish-standardised partial AUC). The official score is the harmonic mean of every
AUC(source), AUC(target) and pAUC value together.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.metrics import roc_auc_score

METRICS = ('AUC(source)', 'AUC(target)', 'pAUC')
MAX_FPR = 0.1


@dataclasses.dataclass(frozen=True)
class SectionResult:
  machine: str
  section: str
  values: dict  # metric name -> value in [0, 1]


def section_metrics(labels, scores, domains, max_fpr: float = MAX_FPR) -> dict[str, float]:
  """labels 1 = anomaly, scores higher = more anomalous, domains 'source'/'target' per clip."""
  labels, scores, domains = map(np.asarray, (labels, scores, domains))
  if not (labels == 1).any() or not (labels == 0).any():
    raise ValueError('a section needs both normal and anomalous clips to be evaluated')
  out = {}
  for name, domain in (('AUC(source)', 'source'), ('AUC(target)', 'target')):
    keep = (domains == domain) | (labels == 1)
    if (labels[keep] == 0).any():
      out[name] = float(roc_auc_score(labels[keep], scores[keep]))
  out['pAUC'] = float(roc_auc_score(labels, scores, max_fpr=max_fpr))
  return out


def hmean(values) -> float:
  """Harmonic mean; 0 when any value is 0 (as scipy.stats.hmean)."""
  values = np.asarray(list(values), np.float64)
  if len(values) == 0:
    return float('nan')
  if (values <= 0).any():
    return 0.0
  return float(len(values) / np.sum(1.0 / values))


def summarise(results: list[SectionResult]) -> dict[str, float]:
  """Per-metric harmonic means over sections, and the official score over all values."""
  summary = {m: hmean(r.values[m] for r in results if m in r.values) for m in METRICS}
  summary['Official score'] = hmean(v for r in results for v in r.values.values())
  return summary
