"""DCASE submission files: anomaly_score_* and decision_result_* CSVs.

Writing is atomic per file; reading validates everything (missing, duplicate or extra files and
rows, non-numeric or non-finite scores) and fails with one line naming the file.
"""
from __future__ import annotations

import csv
import glob
import math
import os
import re

from asd_jax.io import atomic_write_csv


class SubmissionError(ValueError):
  """One line naming the file and what is wrong with it."""


def write_section(folder: str, machine: str, section: str, file_names, scores, decisions):
  """anomaly_score_<m>_section_<ss>_test.csv (file_name,score) and decision_result_... (0|1)."""
  stem = f'{machine}_section_{section}_test.csv'
  atomic_write_csv(os.path.join(folder, f'anomaly_score_{stem}'),
                   ((n, repr(float(s))) for n, s in zip(file_names, scores)))
  atomic_write_csv(os.path.join(folder, f'decision_result_{stem}'),
                   ((n, int(d)) for n, d in zip(file_names, decisions)))


def _read_rows(path: str, parse) -> dict[str, object]:
  """file_name,value rows of one submission file; `parse` turns a value into its type or
  raises ValueError with what is wrong."""
  values: dict[str, object] = {}
  with open(path, newline='') as f:
    for line, row in enumerate(csv.reader(f), 1):
      if not row:
        continue
      if len(row) < 2:
        raise SubmissionError(f'{path}:{line}: expected file_name,value')
      name = os.path.basename(row[0].strip())
      if name in values:
        raise SubmissionError(f'{path}:{line}: duplicate row for {name}')
      try:
        values[name] = parse(row[1].strip(), name)
      except ValueError as e:
        raise SubmissionError(f'{path}:{line}: {e}') from None
  return values


def _score(value: str, name: str) -> float:
  try:
    score = float(value)
  except ValueError:
    raise ValueError(f'score {value!r} is not a number') from None
  if not math.isfinite(score):
    raise ValueError(f'score of {name} is {value}')
  return score


def _decision(value: str, name: str) -> int:
  if value not in ('0', '1'):
    raise ValueError(f'decision of {name} is {value!r}; expected 0 or 1')
  return int(value)


def _read_folder(folder: str, kind: str, parse) -> dict[tuple[str, str], dict]:
  if not os.path.isdir(folder):
    raise SubmissionError(f'{folder}: no such submission folder')
  pattern = re.compile(rf'^{kind}_(?P<machine>.+)_section_(?P<section>\d{{2}})_test\.csv$')
  out = {}
  for path in sorted(glob.glob(os.path.join(folder, f'{kind}_*.csv'))):
    match = pattern.match(os.path.basename(path))
    if not match:
      raise SubmissionError(f'{path}: name is not {kind}_<machine>_section_<ss>_test.csv')
    out[match['machine'], match['section']] = _read_rows(path, parse)
  if not out:
    raise SubmissionError(f'{folder}: no {kind}_*.csv files')
  return out


def read_scores(folder: str) -> dict[tuple[str, str], dict[str, float]]:
  """{(machine, section): {file_name: score}} from a submission folder."""
  return _read_folder(folder, 'anomaly_score', _score)


def read_decisions(folder: str) -> dict[tuple[str, str], dict[str, int]]:
  """{(machine, section): {file_name: 0|1}} from a submission folder's decision files."""
  return _read_folder(folder, 'decision_result', _decision)


def align(values, truth, folder: str, kind: str = 'anomaly_score'):
  """`values` of one kind ({(machine, section): {name: value}}) with clips named either way the
  ground truth allows renamed to its names; fails unless they cover exactly its sections and
  clips."""
  missing = sorted(set(truth) - set(values))
  if missing:
    m, s = missing[0]
    raise SubmissionError(f'{folder}: {kind}_{m}_section_{s}_test.csv is missing')
  extra = sorted(set(values) - set(truth))
  if extra:
    m, s = extra[0]
    raise SubmissionError(f'{folder}/{kind}_{m}_section_{s}_test.csv: no ground truth '
                          'for this section')
  aligned = {}
  for key, section in truth.items():
    name = f'{folder}/{kind}_{key[0]}_section_{key[1]}_test.csv'
    renamed = {}
    for clip, value in values[key].items():
      canonical = section.aliases.get(clip, clip)
      if canonical in renamed:
        raise SubmissionError(f'{name}: {canonical} is listed twice (once as {clip})')
      renamed[canonical] = value
    lacking = sorted(set(section.clips) - set(renamed))
    if lacking:
      raise SubmissionError(f'{name}: no row for {lacking[0]} ({len(lacking)} clips missing)')
    unknown = sorted(set(renamed) - set(section.clips))
    if unknown:
      raise SubmissionError(f'{name}: {unknown[0]} is not in the ground truth')
    aligned[key] = renamed
  return aligned
