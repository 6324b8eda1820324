"""Metrics against sklearn and hand cases; submission I/O and its refusals."""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import roc_auc_score

from asd_jax.data import ground_truth
from asd_jax.evaluation import evaluate, metrics, report, submission
from tests.conftest import REPO


def test_report_arithmetic():
  assert round(100 * metrics.hmean([0.6725, 0.6322, 0.5510]), 2) == 61.43
  # the official evaluator floors each value at float eps before its harmonic mean
  values = [0.5, 0.0, 0.9]
  assert metrics.hmean(values) == pytest.approx(
      scipy.stats.hmean(np.maximum(values, sys.float_info.epsilon)), rel=1e-12)


def test_section_metrics_follow_the_official_definitions():
  labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
  domains = np.array(['source', 'source', 'target', 'target'] * 2)
  scores = np.array([0.1, 0.5, 0.9, 0.2, 0.8, 0.3, 0.7, 0.95])
  got = metrics.section_metrics(labels, scores, domains)
  src = (domains == 'source') | (labels == 1)
  tgt = (domains == 'target') | (labels == 1)
  assert got['AUC (source)'] == roc_auc_score(labels[src], scores[src])
  assert got['AUC (target)'] == roc_auc_score(labels[tgt], scores[tgt])
  assert got['pAUC'] == roc_auc_score(labels, scores, max_fpr=0.1)
  # by hand: source normals {0.1, 0.5} vs anomalies {0.8, 0.3, 0.7, 0.95}: 7 of 8 pairs
  assert got['AUC (source)'] == pytest.approx(7 / 8)
  with pytest.raises(ValueError, match='no target-domain normal clips'):
    metrics.section_metrics(labels, scores, np.array(['source'] * 8))


# A hand-computed section: (label, domain, score, decision) per clip.
HAND = [(0, 0, 0.1, 0), (0, 0, 0.4, 1), (0, 1, 0.6, 0), (0, 1, 0.2, 0),
        (1, 0, 0.5, 1), (1, 0, 0.3, 0), (1, 1, 0.9, 1), (1, 1, 0.7, 1)]
HAND_EXPECTED = {
    'AUC (all)': 13 / 16,  # 4 + 3 + 2 + 4 of the 16 normal-anomaly pairs are ordered right
    'AUC (source)': 7 / 8,  # source normals {0.1, 0.4} vs all four anomalies
    'AUC (target)': 6 / 8,  # target normals {0.6, 0.2} vs all four anomalies
    # ROC reaches TPR 0.5 at FPR 0 and stays there to FPR 0.25: area to FPR 0.1 is 0.05;
    # McClish: (1 + (0.05 - 0.005) / (0.1 - 0.005)) / 2
    'pAUC': 0.5 * (1 + 0.045 / 0.095),
    'precision (source)': 0.5, 'recall (source)': 0.5, 'F1 score (source)': 0.5,  # tp fp fn 1 1 1
    'precision (target)': 1.0, 'recall (target)': 1.0, 'F1 score (target)': 1.0,  # tp 2
}
HAND_OFFICIAL = 3 / (8 / 7 + 8 / 6 + 1 / HAND_EXPECTED['pAUC'])  # 0.782609
EVAL_NAMES = [f'section_00_{i + 1:04d}.wav' for i in range(len(HAND))]
DEV_NAMES = [f'section_00_{("source", "target")[d]}_test_{("normal", "anomaly")[l]}_{i + 1:04d}'
             '_mdl_A' for i, (l, d, _, _) in enumerate(HAND)]


def _official_truth(folder, domain_values=('0', '1')):
  """The official evaluator's three folders for the hand section (machine 'fan')."""
  rows = {'ground_truth_data': [(n, l) for n, (l, _, _, _) in zip(EVAL_NAMES, HAND)],
          'ground_truth_domain': [(n, domain_values[d]) for n, (_, d, _, _) in
                                  zip(EVAL_NAMES, HAND)],
          'ground_truth_attributes': list(zip(EVAL_NAMES, DEV_NAMES))}
  for sub, table in rows.items():
    os.makedirs(os.path.join(folder, sub))
    with open(os.path.join(folder, sub, 'ground_truth_fan_section_00_test.csv'), 'w') as f:
      f.write(''.join(f'{a},{b}\n' for a, b in table))
  return folder


def _hand_submission(folder, attribute_names: bool):
  """Scores and decisions of the hand section; every other clip named by its attribute name."""
  names = [f'{d}.wav' if attribute_names and i % 2 else e
           for i, (e, d) in enumerate(zip(EVAL_NAMES, DEV_NAMES))]
  submission.write_section(folder, 'fan', '00', names, np.array([h[2] for h in HAND]),
                           np.array([h[3] for h in HAND]))
  return folder


@pytest.mark.parametrize('layout_kind', ['official', 'official_words', 'flat'])
def test_official_layouts_give_the_hand_computed_score(tmp_path, layout_kind):
  gt = str(tmp_path / 'gt')
  if layout_kind == 'flat':
    os.makedirs(gt)
    with open(os.path.join(gt, 'ground_truth_fan_section_00_test.csv'), 'w') as f:
      f.write(''.join(f'{n},{h[0]}\n' for n, h in zip(EVAL_NAMES, HAND)))
    with open(os.path.join(gt, 'ground_truth_domain_fan_section_00_test.csv'), 'w') as f:
      f.write(''.join(f'{n},{h[1]}\n' for n, h in zip(EVAL_NAMES, HAND)))
  else:
    _official_truth(gt, ('source', 'target') if layout_kind == 'official_words' else ('0', '1'))
  sub = _hand_submission(str(tmp_path / 'sub'), attribute_names=layout_kind != 'flat')
  results = evaluate.evaluate_submission(sub, ground_truth.read_ground_truth(gt))
  assert results[0].values == pytest.approx(HAND_EXPECTED, abs=1e-12)
  assert metrics.summarise(results)['official score'] == pytest.approx(HAND_OFFICIAL, abs=1e-12)
  rows = report.official_rows(results)
  assert rows[1] == ['section', *metrics.SECTION_COLUMNS]
  assert rows[-2] == ['official score', '', pytest.approx(HAND_OFFICIAL, abs=1e-12)]
  assert rows[-1][0] == 'official score ci95'


@pytest.mark.parametrize('change, message', [
    (lambda gt: _rewrite(gt, 'ground_truth_domain', ',0\n', ',1\n'),
     'has no source-domain normal clips'),
    (lambda gt: _rewrite(gt, 'ground_truth_domain', ',1\n', ',2\n'), "domain of .* is '2'"),
    (lambda gt: _rewrite(gt, 'ground_truth_data', ',1\n', ',x\n'), "label of .* is 'x'"),
])
def test_bad_ground_truth_is_one_line_naming_the_file(tmp_path, change, message):
  gt = _official_truth(str(tmp_path / 'gt'))
  change(gt)
  sub = _hand_submission(str(tmp_path / 'sub'), attribute_names=False)
  with pytest.raises(ValueError, match=message) as raised:
    evaluate.evaluate_submission(sub, ground_truth.read_ground_truth(gt))
  assert 'ground_truth_fan_section_00_test.csv' in str(raised.value)
  assert '\n' not in str(raised.value)


def _rewrite(gt, sub, old, new):
  path = os.path.join(gt, sub, 'ground_truth_fan_section_00_test.csv')
  with open(path) as f:
    text = f.read()
  with open(path, 'w') as f:
    f.write(text.replace(old, new))


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
  truth = ground_truth.read_ground_truth(folder)  # domains from the dev-style names
  results = evaluate.evaluate_submission(sub, truth)
  assert {k: results[0].values[k] for k in metrics.METRICS} == {
      'AUC (source)': 1.0, 'AUC (target)': 1.0, 'pAUC': 1.0}
  assert 'official score' in report.markdown_table({'x': results})


@pytest.mark.parametrize('case, message', [
    ('missing', 'anomaly_score_fan_section_00_test.csv is missing'),
    ('duplicate', 'duplicate row'),
    ('extra_file', 'no ground truth for this section'),
    ('text', "is not a number"),
    ('nan', 'is nan'),
    ('missing_row', 'no row for'),
    ('bad_decision', "decision of .* is '2'"),
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
  if case == 'bad_decision':
    decisions = sub / 'decision_result_fan_section_00_test.csv'
    decisions.write_text(decisions.read_text().replace(',0', ',2', 1))
  if case in ('text', 'nan'):
    path.write_text(path.read_text().replace('0.5', 'high' if case == 'text' else 'nan', 1))
  with pytest.raises(submission.SubmissionError, match=message):
    evaluate.evaluate_submission(str(sub), ground_truth.read_ground_truth(folder))


def test_evaluate_command(tmp_path):
  gt = _official_truth(str(tmp_path / 'gt'))
  sub = _hand_submission(str(tmp_path / 'sub'), attribute_names=True)
  result_csv = str(tmp_path / 'result.csv')
  run = lambda s, *extra: subprocess.run(
      [sys.executable, '-m', 'asd_jax.cli.main', 'evaluate', f'--submission_dir={s}',
       f'--ground_truth_dir={gt}', *extra], env={**os.environ, 'PYTHONPATH': REPO},
      capture_output=True, text=True, timeout=300)
  good = run(sub, f'--result_csv={result_csv}')
  assert good.returncode == 0, good.stderr
  lines = good.stdout.splitlines()
  assert lines[-2].split() == ['official', 'score', f'{100 * HAND_OFFICIAL:.2f}']
  assert lines[-1].split()[:3] == ['official', 'score', 'ci95']
  assert lines[2].split()[:5] == ['00', '81.25', '87.50', '75.00', '73.68']
  with open(result_csv) as f:
    rows = list(csv.reader(f))
  assert rows[0] == ['fan'] and rows[1] == ['section', *metrics.SECTION_COLUMNS]
  assert rows[-2][0] == 'official score'
  assert float(rows[-2][2]) == pytest.approx(HAND_OFFICIAL, abs=1e-9)
  bad = run(str(tmp_path / 'nothing'))
  assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].endswith(
      'no such submission folder')


def test_official_score_over_several_machines_and_sections_is_computed_by_hand(tmp_path):
  """Two machine types × two sections, written as submission files and flat ground truth: each
  section's AUC (source), AUC (target) and pAUC against sklearn on that section's clips alone,
  the official score the harmonic mean (scipy) of all twelve, the report's per-metric "All
  (hmean)" rows over the four sections, the official evaluator's mean rows (arithmetic,
  harmonic, source, target) per machine and over everything, and its 'official score ci95'
  against a brute-force jackknife (sklearn on every clip set with one clip left out; scores
  rounded so that ties occur)."""
  rng = np.random.default_rng(3)
  gt, sub = tmp_path / 'gt', str(tmp_path / 'sub')
  gt.mkdir()
  expected, per_machine, pooled = {}, {}, []
  for machine in ('fan', 'valve'):
    for section in ('00', '01'):
      names, labels, domains = [], [], []
      for domain in ('source', 'target'):
        for label in (0, 1):
          for i in range(10):
            names.append(f'section_{section}_{domain}_test_{("normal", "anomaly")[label]}_'
                         f'{len(names):04d}_noAttribute.wav')
            labels.append(label)
            domains.append(domain)
      labels, domains = np.array(labels), np.array(domains)
      scores = np.round(rng.normal(size=len(names)) + labels * rng.uniform(0.2, 1.5), 1)
      pooled.append((labels, scores))
      submission.write_section(sub, machine, section, names, scores, scores > 0.5)
      stem = f'{machine}_section_{section}_test.csv'
      (gt / f'ground_truth_{stem}').write_text(
          ''.join(f'{n},{l}\n' for n, l in zip(names, labels)))
      (gt / f'ground_truth_domain_{stem}').write_text(
          ''.join(f'{n},{int(d == "target")}\n' for n, d in zip(names, domains)))
      values = {}
      for domain in ('source', 'target'):
        keep = (domains == domain) | (labels == 1)
        values[f'AUC ({domain})'] = roc_auc_score(labels[keep], scores[keep])
      values['pAUC'] = roc_auc_score(labels, scores, max_fpr=0.1)
      expected[machine, section] = values
      per_machine.setdefault(machine, []).append(values)
  results = evaluate.evaluate_submission(sub, ground_truth.read_ground_truth(str(gt)))
  assert sorted((r.machine, r.section) for r in results) == sorted(expected)
  for r in results:
    for metric, value in expected[r.machine, r.section].items():
      assert r.values[metric] == pytest.approx(value, abs=1e-12), (r.machine, r.section, metric)
  every = [v for values in expected.values() for v in values.values()]
  assert len(every) == 12
  summary = metrics.summarise(results)
  assert summary['official score'] == pytest.approx(scipy.stats.hmean(every), abs=1e-12)
  for metric in ('AUC (source)', 'AUC (target)', 'pAUC'):
    assert summary[metric] == pytest.approx(
        scipy.stats.hmean([v[metric] for v in expected.values()]), abs=1e-12)

  def mean_rows(sections):
    auc = ([v['AUC (source)'] for v in sections] + [v['AUC (target)'] for v in sections])
    pauc = [v['pAUC'] for v in sections] * 2
    half = len(sections)
    return [[np.mean(auc), np.mean(pauc)], [scipy.stats.hmean(auc), scipy.stats.hmean(pauc)],
            [scipy.stats.hmean(auc[:half]), scipy.stats.hmean(pauc[:half])],
            [scipy.stats.hmean(auc[half:]), scipy.stats.hmean(pauc[half:])]]

  rows = report.official_rows(results)
  means = [row for row in rows if row and str(row[0]).endswith(('mean', 'domains'))]
  wanted = mean_rows(per_machine['fan']) + mean_rows(per_machine['valve']) + mean_rows(
      list(expected.values()))
  assert len(means) == len(wanted) == 12
  for row, values in zip(means, wanted):
    assert row[2:4] == pytest.approx(values, abs=1e-12), row[0]
  assert rows[-2] == ['official score', '', pytest.approx(scipy.stats.hmean(every), abs=1e-12)]
  labels, scores = (np.concatenate(arrays) for arrays in zip(*pooled))
  assert rows[-1] == ['official score ci95', '',
                      pytest.approx(_brute_force_ci95(labels, scores), rel=1e-9)]


def _brute_force_ci95(labels, scores) -> float:
  """The official evaluator's CI: for AUC and pAUC, sklearn on all clips but one for each clip,
  σ = sqrt(Σ(θ_i − mean)² / (n(n − 1))), half-width t(0.975, n − 1)·σ; their mean."""
  n = len(labels)
  halves = []
  for statistic in (roc_auc_score, lambda y, s: roc_auc_score(y, s, max_fpr=0.1)):
    theta = np.array([statistic(np.delete(labels, i), np.delete(scores, i)) for i in range(n)])
    sigma = np.sqrt(np.sum((theta - theta.mean()) ** 2) / (n * (n - 1)))
    halves.append(scipy.stats.t.ppf(0.975, n - 1) * sigma)
  return float(np.mean(halves))


def test_leave_one_out_auc_and_pauc_equal_sklearn_on_each_reduced_set():
  """The closed-form leave-one-out AUC (per clip) and the pAUC loop (per clip in descending
  score order) against sklearn on each set with one clip removed; ties included. Tolerance 1e-12."""
  rng = np.random.default_rng(5)
  labels = (rng.random(120) < 0.3).astype(int)
  scores = np.round(rng.normal(size=120) + labels, 1)
  auc = [roc_auc_score(np.delete(labels, i), np.delete(scores, i)) for i in range(120)]
  assert metrics.leave_one_out_auc(labels, scores) == pytest.approx(auc, abs=1e-12)
  order = np.argsort(-scores, kind='stable')
  pauc = [roc_auc_score(np.delete(labels, i), np.delete(scores, i), max_fpr=0.1) for i in order]
  assert metrics.leave_one_out_pauc(labels, scores) == pytest.approx(pauc, abs=1e-12)
  with pytest.raises(ValueError, match='at least 2 anomalous'):
    metrics.leave_one_out_auc([0, 0, 1], [0.1, 0.2, 0.3])
