"""Score a submission folder against ground truth as the official evaluator does.

asd-jax evaluate --submission_dir=S --ground_truth_dir=G [--result_csv=F]

S holds anomaly_score_<machine>_section_<ss>_test.csv and decision_result_..._test.csv. G is
either the official evaluator's folder (ground_truth_data/, ground_truth_domain/ with 0 = source
and 1 = target, ground_truth_attributes/, so a submission may name clips either way) or a flat
folder of ground_truth_<machine>_section_<ss>_test.csv with ground_truth_domain_... files.
Prints per section AUC (all), AUC (source), AUC (target), pAUC (max FPR 0.1), precision, recall
and F1 of the decisions per domain, the means per machine and over everything, and the official
score (harmonic mean of every AUC (source), AUC (target) and pAUC); --result_csv writes the same
table in the official evaluator's <team>_result.csv layout.
"""
from absl import flags

from asd_jax.cli import common

_SUBMISSION = flags.DEFINE_string('submission_dir', None, 'folder of anomaly_score_*.csv and '
                                  'decision_result_*.csv', required=True)
_TRUTH = flags.DEFINE_string('ground_truth_dir', None, 'ground truth: the official evaluator\'s '
                             'folder or a flat folder of ground_truth_*.csv', required=True)
_RESULT_CSV = flags.DEFINE_string('result_csv', None, 'also write the result table here, in the '
                                  'official evaluator\'s CSV layout')


def main(argv):
  common.reject_positional(argv)
  common.check_output_file('--result_csv', _RESULT_CSV.value)
  from asd_jax.data import ground_truth
  from asd_jax.evaluation import evaluate, report
  try:
    truth = ground_truth.read_ground_truth(_TRUTH.value)
    results = evaluate.evaluate_submission(_SUBMISSION.value, truth)
  except ValueError as e:
    common.fail(str(e))
  print(report.official_text(results))
  if _RESULT_CSV.value:
    report.write_official_csv(_RESULT_CSV.value, results)
