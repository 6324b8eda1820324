"""Scores a submission folder against ground truth, like the official evaluator."""
from __future__ import annotations

from asd_jax.evaluation import metrics, submission


def evaluate_submission(submission_dir: str, truth) -> list[metrics.SectionResult]:
  """truth: {(machine, section): {file_name: (label, domain)}} (see read_ground_truth)."""
  scores = submission.read_scores(submission_dir)
  submission.align(scores, truth, submission_dir)
  results = []
  for (machine, section), clips in sorted(truth.items()):
    names = sorted(clips)
    values = metrics.section_metrics([clips[n][0] for n in names],
                                     [scores[machine, section][n] for n in names],
                                     [clips[n][1] for n in names])
    results.append(metrics.SectionResult(machine, section, values))
  return results
