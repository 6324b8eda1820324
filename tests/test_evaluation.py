"""Metrics against sklearn and hand cases; submission I/O and its refusals."""
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from asd_jax.evaluation import evaluate, metrics, report, submission
from tests.conftest import REPO


def test_report_arithmetic():
  assert round(100 * metrics.hmean([0.6725, 0.6322, 0.5510]), 2) == 61.43
  assert metrics.hmean([0.5, 0.0]) == 0.0


def test_section_metrics_follow_the_official_definitions():
  labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
  domains = np.array(['source', 'source', 'target', 'target'] * 2)
  scores = np.array([0.1, 0.5, 0.9, 0.2, 0.8, 0.3, 0.7, 0.95])
  got = metrics.section_metrics(labels, scores, domains)
  src = (domains == 'source') | (labels == 1)
  tgt = (domains == 'target') | (labels == 1)
  assert got['AUC(source)'] == roc_auc_score(labels[src], scores[src])
  assert got['AUC(target)'] == roc_auc_score(labels[tgt], scores[tgt])
  assert got['pAUC'] == roc_auc_score(labels, scores, max_fpr=0.1)
  # by hand: source normals {0.1, 0.5} vs anomalies {0.8, 0.3, 0.7, 0.95}: 7 of 8 pairs
  assert got['AUC(source)'] == pytest.approx(7 / 8)


def _write(folder, rows_by_section):
  for (machine, section), rows in rows_by_section.items():
    names = [r[0] for r in rows]
    submission.write_section(folder, machine, section, names, np.array([r[1] for r in rows]),
                             np.zeros(len(rows)))


@pytest.fixture
def truth_dir(tmp_path):
  folder = tmp_path / 'gt'
  folder.mkdir()
  names = [f'section_00_{d}_test_{l}_000{i}_a_1.wav' for i, (d, l) in enumerate(
      [('source', 'normal'), ('source', 'anomaly'), ('target', 'normal'), ('target', 'anomaly')])]
  (folder / 'ground_truth_fan_section_00_test.csv').write_text(
      ''.join(f'{n},{int("anomaly" in n)}\n' for n in names))
  return str(folder), names


def test_submission_round_trip_and_evaluation(tmp_path, truth_dir):
  folder, names = truth_dir
  sub = str(tmp_path / 'sub')
  _write(sub, {('fan', '00'): [(n, s) for n, s in zip(names, [0.1, 0.9, 0.2, 0.8])]})
  assert sorted(os.listdir(sub)) == ['anomaly_score_fan_section_00_test.csv',
                                     'decision_result_fan_section_00_test.csv']
  truth = submission.read_ground_truth(folder)  # domains from the dev-style names
  results = evaluate.evaluate_submission(sub, truth)
  assert results[0].values == {'AUC(source)': 1.0, 'AUC(target)': 1.0, 'pAUC': 1.0}
  assert 'Official score' in report.markdown_table({'x': results})


@pytest.mark.parametrize('case, message', [
    ('missing', 'anomaly_score_fan_section_00_test.csv is missing'),
    ('duplicate', 'duplicate row'),
    ('extra_file', 'no ground truth for this section'),
    ('text', "is not a number"),
    ('nan', 'is nan'),
    ('missing_row', 'no score for'),
])
def test_bad_submissions_are_refused(tmp_path, truth_dir, case, message):
  folder, names = truth_dir
  sub = tmp_path / 'sub'
  rows = [(n, 0.5) for n in names]
  if case != 'missing':
    _write(str(sub), {('fan', '00'): rows[:3] if case == 'missing_row' else rows})
  else:
    _write(str(sub), {('pump', '00'): rows})
  path = sub / 'anomaly_score_fan_section_00_test.csv'
  if case == 'duplicate':
    path.write_text(path.read_text() + f'{names[0]},0.3\n')
  if case == 'extra_file':
    _write(str(sub), {('valve', '01'): rows})
  if case in ('text', 'nan'):
    path.write_text(path.read_text().replace('0.5', 'high' if case == 'text' else 'nan', 1))
  with pytest.raises(submission.SubmissionError, match=message):
    evaluate.evaluate_submission(str(sub), submission.read_ground_truth(folder))


def test_evaluate_command(tmp_path, truth_dir):
  folder, names = truth_dir
  sub = str(tmp_path / 'sub')
  _write(sub, {('fan', '00'): [(n, s) for n, s in zip(names, [0.1, 0.9, 0.95, 0.8])]})
  run = lambda s: subprocess.run([sys.executable, '-m', 'asd_jax.cli.main', 'evaluate',
                                  f'--submission_dir={s}', f'--ground_truth_dir={folder}'],
                                 env={**os.environ, 'PYTHONPATH': REPO}, capture_output=True,
                                 text=True, timeout=300)
  good = run(sub)
  assert good.returncode == 0, good.stderr
  lines = good.stdout.splitlines()
  # the target normal (0.95) outscores both anomalies (0.9, 0.8); the source normal (0.1) none
  assert any('AUC(source)' in l and l.endswith('100.00') for l in lines)
  assert any('AUC(target)' in l and l.endswith(' 0.00') for l in lines)
  bad = run(str(tmp_path / 'nothing'))
  assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].endswith(
      'no such submission folder')
