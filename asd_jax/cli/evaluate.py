"""asd-jax evaluate --submission_dir=S --ground_truth_dir=G

Scores a DCASE submission folder (anomaly_score_<machine>_section_<ss>_test.csv) against
ground_truth_<machine>_section_<ss>_test.csv (+ ground_truth_domain_...) as the official
evaluator does: AUC(source), AUC(target), pAUC (max FPR 0.1) per section, harmonic means per
metric and the official score over all of them.
"""
from absl import flags

from asd_jax.cli import common

_SUBMISSION = flags.DEFINE_string('submission_dir', None, 'folder of anomaly_score_*.csv',
                                  required=True)
_TRUTH = flags.DEFINE_string('ground_truth_dir', None, 'folder of ground_truth_*.csv',
                             required=True)


def main(argv):
  common.reject_positional(argv)
  from asd_jax.evaluation import evaluate, report, submission
  try:
    truth = submission.read_ground_truth(_TRUTH.value)
    results = evaluate.evaluate_submission(_SUBMISSION.value, truth)
  except (submission.SubmissionError, ValueError) as e:
    common.fail(str(e))
  print(report.text_table({'score': results}))
