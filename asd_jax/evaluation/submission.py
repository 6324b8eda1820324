"""DCASE submission files: anomaly_score_* and decision_result_* CSVs, and their ground truth.

Writing is atomic per file; reading validates everything (missing, duplicate or extra files and
rows, non-numeric or non-finite scores) and fails with one line naming the file.
"""
from __future__ import annotations

import csv
import glob
import io
import math
import os
import re

from asd_jax.data.layout import parse_file_name
from asd_jax.io import atomic_write_text

SCORE_FILE = re.compile(r'^anomaly_score_(?P<machine>.+)_section_(?P<section>\d{2})_test\.csv$')
TRUTH_FILE = re.compile(r'^ground_truth_(?P<machine>.+)_section_(?P<section>\d{2})_test\.csv$')


class SubmissionError(ValueError):
  """One line naming the file and what is wrong with it."""


def _csv_text(rows) -> str:
  buffer = io.StringIO()
  csv.writer(buffer, lineterminator='\n').writerows(rows)
  return buffer.getvalue()


def write_section(folder: str, machine: str, section: str, file_names, scores, decisions):
  """anomaly_score_<m>_section_<ss>_test.csv (file_name,score) and decision_result_... (0|1)."""
  stem = f'{machine}_section_{section}_test.csv'
  atomic_write_text(os.path.join(folder, f'anomaly_score_{stem}'),
                    _csv_text((n, repr(float(s))) for n, s in zip(file_names, scores)))
  atomic_write_text(os.path.join(folder, f'decision_result_{stem}'),
                    _csv_text((n, int(d)) for n, d in zip(file_names, decisions)))


def read_scores(folder: str) -> dict[tuple[str, str], dict[str, float]]:
  """{(machine, section): {file_name: score}} from a submission folder."""
  if not os.path.isdir(folder):
    raise SubmissionError(f'{folder}: no such submission folder')
  out = {}
  for path in sorted(glob.glob(os.path.join(folder, 'anomaly_score_*.csv'))):
    match = SCORE_FILE.match(os.path.basename(path))
    if not match:
      raise SubmissionError(f'{path}: name is not anomaly_score_<machine>_section_<ss>_test.csv')
    scores: dict[str, float] = {}
    with open(path, newline='') as f:
      for line, row in enumerate(csv.reader(f), 1):
        if not row:
          continue
        if len(row) < 2:
          raise SubmissionError(f'{path}:{line}: expected file_name,score')
        name, value = row[0].strip(), row[1].strip()
        if name in scores:
          raise SubmissionError(f'{path}:{line}: duplicate row for {name}')
        try:
          score = float(value)
        except ValueError:
          raise SubmissionError(f'{path}:{line}: score {value!r} is not a number') from None
        if not math.isfinite(score):
          raise SubmissionError(f'{path}:{line}: score of {name} is {value}')
        scores[name] = score
    out[match['machine'], match['section']] = scores
  if not out:
    raise SubmissionError(f'{folder}: no anomaly_score_*.csv files')
  return out


def read_ground_truth(folder: str) -> dict[tuple[str, str], dict[str, tuple[int, str | None]]]:
  """{(machine, section): {file_name: (label, domain)}} from ground_truth[_domain]_*.csv; a
  missing domain file falls back to the domain in the file names (dev naming)."""
  if not os.path.isdir(folder):
    raise SubmissionError(f'{folder}: no such ground-truth folder')
  out = {}
  for path in sorted(glob.glob(os.path.join(folder, 'ground_truth_*.csv'))):
    match = TRUTH_FILE.match(os.path.basename(path))
    if not match or os.path.basename(path).startswith('ground_truth_domain_'):
      continue
    machine, section = match['machine'], match['section']
    domain_path = os.path.join(folder, f'ground_truth_domain_{machine}_section_{section}_test.csv')
    domains = {}
    if os.path.exists(domain_path):
      with open(domain_path, newline='') as f:
        domains = {r[0].strip(): r[1].strip() for r in csv.reader(f) if len(r) >= 2}
    truth = {}
    with open(path, newline='') as f:
      for row in csv.reader(f):
        if len(row) < 2:
          continue
        name = row[0].strip()
        if row[1].strip() not in ('0', '1'):
          raise SubmissionError(f'{path}: label of {name} is {row[1]!r}, expected 0 or 1')
        domain = domains.get(name)
        if domain is None:
          try:
            domain = parse_file_name(name).domain
          except ValueError:
            domain = None
        if domain is None:
          raise SubmissionError(f'{path}: no domain for {name} ({domain_path} is missing)')
        truth[name] = (int(row[1]), domain)
    out[machine, section] = truth
  if not out:
    raise SubmissionError(f'{folder}: no ground_truth_<machine>_section_<ss>_test.csv files')
  return out


def align(scores, truth, folder: str):
  """Checks the submission covers exactly the ground truth's sections and clips."""
  missing = sorted(set(truth) - set(scores))
  if missing:
    m, s = missing[0]
    raise SubmissionError(f'{folder}: anomaly_score_{m}_section_{s}_test.csv is missing')
  extra = sorted(set(scores) - set(truth))
  if extra:
    m, s = extra[0]
    raise SubmissionError(f'{folder}/anomaly_score_{m}_section_{s}_test.csv: no ground truth '
                          'for this section')
  for key, expected in truth.items():
    name = f'{folder}/anomaly_score_{key[0]}_section_{key[1]}_test.csv'
    lacking = sorted(set(expected) - set(scores[key]))
    if lacking:
      raise SubmissionError(f'{name}: no score for {lacking[0]} ({len(lacking)} clips missing)')
    unknown = sorted(set(scores[key]) - set(expected))
    if unknown:
      raise SubmissionError(f'{name}: {unknown[0]} is not in the ground truth')
