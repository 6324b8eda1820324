"""Scores a submission folder against ground truth, like the official evaluator."""
from __future__ import annotations

import numpy as np

from asd_jax.evaluation import metrics, submission


def evaluate_submission(submission_dir: str, truth) -> list[metrics.SectionResult]:
  """truth: {(machine, section): SectionTruth} (data.ground_truth). Both the anomaly-score and
  the decision files must cover exactly the ground truth's clips."""
  scores = submission.align(submission.read_scores(submission_dir), truth, submission_dir)
  decisions = submission.align(submission.read_decisions(submission_dir), truth,
                               submission_dir, 'decision_result')
  results = []
  for key, section in sorted(truth.items()):
    names = sorted(section.clips)
    labels = np.array([section.clips[n][0] for n in names])
    values = np.array([scores[key][n] for n in names], np.float64)
    try:
      columns = metrics.section_metrics(labels, values, [section.clips[n][1] for n in names],
                                        [decisions[key][n] for n in names])
    except ValueError as e:
      raise submission.SubmissionError(f'{section.path}: {key[0]} section {key[1]}: {e}') from None
    results.append(metrics.SectionResult(*key, columns, labels=labels, scores=values))
  return results
