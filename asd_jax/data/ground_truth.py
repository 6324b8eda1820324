"""DCASE Task 2 ground truth, in both layouts the official tools use (DESIGN §6).

Official evaluator (nttcslab dcase202x_task2_evaluator), one file per section in each of
  G/ground_truth_data/ground_truth_<machine>_section_<ss>_test.csv       name,0|1 (1 = anomaly)
  G/ground_truth_domain/ground_truth_<machine>_section_<ss>_test.csv     name,0|1 (1 = target)
  G/ground_truth_attributes/ground_truth_<machine>_section_<ss>_test.csv name,<dev-style name>
Flat, all in one folder:
  G/ground_truth_<machine>_section_<ss>_test.csv and G/ground_truth_domain_<machine>_..._test.csv
Domain values are the official 0 (source) / 1 (target) or the words. A clip without a domain row
takes the domain its own (or its attribute-named) file name carries. Every problem is one line
naming the file.
"""
from __future__ import annotations

import csv
import dataclasses
import glob
import os
import re

TRUTH_FILE = re.compile(r'^ground_truth_(?P<machine>.+)_section_(?P<section>\d{2})_test\.csv$')
DOMAIN_VALUES = {'0': 'source', '1': 'target', 'source': 'source', 'target': 'target'}
LABEL_VALUES = {'0': 0, '1': 1}
OFFICIAL_FOLDERS = ('ground_truth_data', 'ground_truth_domain', 'ground_truth_attributes')
_NAMED_DOMAIN = re.compile(r'^section_\d{2}_(source|target)_')


class GroundTruthError(ValueError):
  """Bad ground truth; the message is one line naming the file and the problem."""


@dataclasses.dataclass(frozen=True)
class SectionTruth:
  """The labelled test clips of one (machine, section)."""
  machine: str
  section: str
  path: str  # the labels file (or the clips' folder), named in messages
  clips: dict  # file name -> (label: 1 = anomaly, domain: 'source' | 'target')
  aliases: dict = dataclasses.field(default_factory=dict)  # other name of a clip -> file name


GroundTruth = dict  # (machine, section) -> SectionTruth


def _rows(path: str) -> list[tuple[str, str]]:
  with open(path, newline='') as f:
    rows = []
    for line, row in enumerate(csv.reader(f), 1):
      if not row or not row[0].strip():
        continue
      if len(row) < 2:
        raise GroundTruthError(f'{path}:{line}: expected two columns, got {row!r}')
      rows.append((os.path.basename(row[0].strip()), row[1].strip()))
  return rows


def _domain_value(value: str, path: str, name: str) -> str:
  """'0' / 'source' -> 'source', '1' / 'target' -> 'target'; anything else is refused."""
  domain = DOMAIN_VALUES.get(value.lower())
  if domain is None:
    raise GroundTruthError(f'{path}: domain of {name} is {value!r}; expected 0 (source), '
                           '1 (target) or the words')
  return domain


def _named_domain(name: str) -> str | None:
  match = _NAMED_DOMAIN.match(name)
  return match.group(1) if match else None


def read_section(machine: str, section: str, labels_path: str, domains_path: str | None,
                 attributes_path: str | None) -> SectionTruth:
  """One section from its labels file and, where they exist, its domain and attribute files."""
  aliases = {}
  if attributes_path and os.path.isfile(attributes_path):
    for name, other in _rows(attributes_path):
      other = other if other.endswith('.wav') else f'{other}.wav'
      aliases[other] = name
  named = {name: _named_domain(other) for other, name in aliases.items()}
  domains = {}
  if domains_path and os.path.isfile(domains_path):
    domains = {name: _domain_value(value, domains_path, name)
               for name, value in _rows(domains_path)}
  clips = {}
  for name, value in _rows(labels_path):
    if value not in LABEL_VALUES:
      raise GroundTruthError(f'{labels_path}: label of {name} is {value!r}; expected 0 '
                             '(normal) or 1 (anomaly)')
    if name in clips:
      raise GroundTruthError(f'{labels_path}: {name} is listed twice')
    domain = domains.get(name) or _named_domain(name) or named.get(name)
    if domain is None:
      raise GroundTruthError(f'{labels_path}: no domain for {name} (no row in '
                             f'{domains_path or "a domain file"}, none in its name)')
    clips[name] = (LABEL_VALUES[value], domain)
  if not clips:
    raise GroundTruthError(f'{labels_path}: no rows')
  return SectionTruth(machine, section, labels_path, clips, aliases)


def is_ground_truth_folder(folder: str) -> bool:
  """Whether `folder` holds ground truth in either layout."""
  return (os.path.isdir(os.path.join(folder, OFFICIAL_FOLDERS[0])) or
          bool(_label_files(folder)))


def _label_files(folder: str) -> list[str]:
  return [p for p in sorted(glob.glob(os.path.join(folder, 'ground_truth_*.csv')))
          if not os.path.basename(p).startswith('ground_truth_domain_')]


def read_ground_truth(folder: str) -> GroundTruth:
  """{(machine, section): SectionTruth} from an official-layout or a flat folder."""
  if not os.path.isdir(folder):
    raise GroundTruthError(f'{folder}: no such ground-truth folder')
  official = os.path.isdir(os.path.join(folder, OFFICIAL_FOLDERS[0]))
  data_dir = os.path.join(folder, OFFICIAL_FOLDERS[0]) if official else folder
  truth = {}
  for path in _label_files(data_dir):
    match = TRUTH_FILE.match(os.path.basename(path))
    if not match:
      raise GroundTruthError(f'{path}: name is not ground_truth_<machine>_section_<ss>_test.csv')
    machine, section = match['machine'], match['section']
    stem = f'{machine}_section_{section}_test.csv'
    if official:
      domains = os.path.join(folder, OFFICIAL_FOLDERS[1], f'ground_truth_{stem}')
      attributes = os.path.join(folder, OFFICIAL_FOLDERS[2], f'ground_truth_{stem}')
    else:
      domains, attributes = os.path.join(folder, f'ground_truth_domain_{stem}'), None
    truth[machine, section] = read_section(machine, section, path, domains, attributes)
  if not truth:
    raise GroundTruthError(f'{folder}: no ground_truth_<machine>_section_<ss>_test.csv files '
                           f'(flat, or under {OFFICIAL_FOLDERS[0]}/)')
  return truth


def dataset_ground_truth(root: str) -> GroundTruth:
  """The ground truth shipped with a dataset: <root>/ground_truth/ (either layout) or the
  official evaluator's folders at <root>; empty when there is none."""
  for folder in (os.path.join(root, 'ground_truth'), root):
    if os.path.isdir(folder) and is_ground_truth_folder(folder):
      return read_ground_truth(folder)
  return {}
