"""DCASE Task 2 dataset layout: file names, attribute CSVs, ground truth -> one typed manifest.

<root>/{dev,eval}_data/raw/<machine>/{train,test}/*.wav with attributes_<ss>.csv beside the
split folders, and ground truth in either official layout (see `ground_truth`). Every problem is
one line naming its file; the bad file is left out and the line kept in `Manifest.problems`;
`strict` raises them all at the end of the scan (DatasetError.problems).
"""
from __future__ import annotations

import csv
import dataclasses
import glob
import logging
import os
import re

from asd_jax.data import audio_check
from asd_jax.data import ground_truth as ground_truth_lib

TRAIN_OR_DEV_TEST = re.compile(
    r'^section_(?P<section>\d{2})_(?P<domain>source|target)_(?P<split>train|test)_'
    r'(?P<label>normal|anomaly)_(?P<index>\d+)_(?P<attrs>.+)\.wav$')
EVAL_TEST = re.compile(r'^section_(?P<section>\d{2})_(?P<index>\d+)\.wav$')
NO_ATTRIBUTE = ('noAttribute', 'noAttributes', '')
DATASETS = ('dev_data', 'eval_data')


class DatasetError(ValueError):
  """Bad dataset input; the message is one line naming the file and the problem. `problems`
  holds every such line when a scan met several."""

  def __init__(self, message: str, problems: list[str] | None = None):
    super().__init__(message)
    self.problems = problems or [message]

  @classmethod
  def from_problems(cls, problems: list[str]) -> 'DatasetError':
    more = f' (and {len(problems) - 1} more bad files)' if len(problems) > 1 else ''
    return cls(problems[0] + more, problems)


@dataclasses.dataclass(frozen=True)
class Clip:
  """One WAV file of the dataset and everything known about it."""
  path: str
  dataset: str  # 'dev' or 'eval'
  machine: str
  section: str  # two digits, '00'
  split: str  # 'train' or 'test'
  domain: str | None  # 'source', 'target', or None (eval test without ground truth)
  label: str | None  # 'normal', 'anomaly', or None (unknown)
  index: int
  attribute_string: str  # '' when the clip has none
  attributes: tuple[tuple[str, str], ...]
  channels: int
  sample_rate: int
  num_samples: int

  @property
  def file_name(self) -> str:
    return os.path.basename(self.path)

  @property
  def duration(self) -> float:
    return self.num_samples / self.sample_rate

  @property
  def has_attributes(self) -> bool:
    return self.attribute_string not in NO_ATTRIBUTE


@dataclasses.dataclass(frozen=True)
class ParsedName:
  section: str
  index: int
  domain: str | None = None
  split: str | None = None
  label: str | None = None
  attribute_string: str = ''


def parse_file_name(name: str) -> ParsedName:
  """Parses a DCASE clip name (train, dev test with labels, or eval test without)."""
  match = TRAIN_OR_DEV_TEST.match(name)
  if match:
    attrs = match['attrs']
    return ParsedName(match['section'], int(match['index']), match['domain'], match['split'],
                      match['label'], '' if attrs in NO_ATTRIBUTE else attrs)
  match = EVAL_TEST.match(name)
  if match:
    return ParsedName(match['section'], int(match['index']), split='test')
  raise DatasetError(f'{name}: file name fits no DCASE pattern (expected section_<ss>_'
                     '<source|target>_<train|test>_<normal|anomaly>_<iiii>_<attrs>.wav or '
                     'section_<ss>_<iiii>.wav)')


def attribute_pairs(attribute_string: str) -> tuple[tuple[str, str], ...]:
  """'k1_v1_k2_v2' -> (('k1', 'v1'), ('k2', 'v2')); an odd token count keeps one raw value."""
  if attribute_string in NO_ATTRIBUTE:
    return ()
  tokens = attribute_string.split('_')
  if len(tokens) % 2:
    return (('attribute', attribute_string),)
  return tuple(zip(tokens[0::2], tokens[1::2]))


def read_attribute_csv(path: str) -> dict[str, tuple[tuple[str, str], ...]]:
  """attributes_<ss>.csv rows (file_name, d1p, d1v, ...) keyed by the file's base name."""
  table = {}
  with open(path, newline='') as f:
    reader = csv.reader(f)
    header = next(reader, None)
    if not header or header[0].strip() != 'file_name':
      raise DatasetError(f'{path}: not an attributes CSV (first column must be file_name)')
    for row in reader:
      if not row:
        continue
      values = [v.strip() for v in row[1:]]
      pairs = tuple((values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)
                    if values[i])
      table[os.path.basename(row[0].strip())] = pairs
  return table


@dataclasses.dataclass
class Manifest:
  """All clips of a dataset root plus the problems met while reading it."""
  root: str
  clips: list[Clip]
  problems: list[str] = dataclasses.field(default_factory=list)

  def select(self, **where) -> list[Clip]:
    """Clips whose fields equal the given values, e.g. select(split='train', machine='fan')."""
    return [c for c in self.clips if all(getattr(c, k) == v for k, v in where.items())]

  def skipped_report(self) -> str:
    """What --nostrict left out, one line per file ('' when nothing was)."""
    if not self.problems:
      return ''
    return '\n'.join([f'{len(self.problems)} bad files skipped (--nostrict):',
                      *(f'  {p}' for p in self.problems)])

  @property
  def machines(self) -> list[str]:
    return sorted({c.machine for c in self.clips})

  def sections(self) -> list[tuple[str, str, str]]:
    """(dataset, machine, section) triples present, sorted."""
    return sorted({(c.dataset, c.machine, c.section) for c in self.clips})


def scan_dataset(root: str, strict: bool = True, datasets=DATASETS) -> Manifest:
  """Reads every clip under `root` into a `Manifest` (headers only; no audio is decoded;
  `audio_check.content_problems` decodes). Bad files are left out and listed; with `strict`
  they raise DatasetError. Broken ground truth always raises: it would bend every metric."""
  if not os.path.isdir(root):
    raise DatasetError(f'{root}: no such dataset folder')
  problems: list[str] = []
  clips: list[Clip] = []
  try:
    truth = ground_truth_lib.dataset_ground_truth(root)
  except ground_truth_lib.GroundTruthError as e:
    raise DatasetError(str(e)) from None
  machine_dirs = []
  for dataset in datasets:
    machine_dirs += sorted(glob.glob(os.path.join(root, dataset, 'raw', '*', '')))
  if not machine_dirs:
    raise DatasetError(f'{root}: no machine folders under dev_data/raw/ or eval_data/raw/')
  for machine_dir in machine_dirs:
    machine_dir = machine_dir.rstrip(os.sep)
    machine = os.path.basename(machine_dir)
    dataset = os.path.basename(os.path.dirname(os.path.dirname(machine_dir))).split('_')[0]
    attributes = {}
    for csv_path in sorted(glob.glob(os.path.join(machine_dir, 'attributes_*.csv'))):
      try:
        attributes[csv_path] = read_attribute_csv(csv_path)
      except DatasetError as e:
        problems.append(str(e))
    seen = set()
    for split in ('train', 'test'):
      split_dir = os.path.join(machine_dir, split)
      if not os.path.isdir(split_dir):
        if split == 'train' or dataset == 'dev':
          problems.append(f'{split_dir}: missing folder')
        continue
      for name in sorted(os.listdir(split_dir)):
        path = os.path.join(split_dir, name)
        seen.add(name)
        clip = _read_clip(path, dataset, machine, split, attributes, truth, problems)
        if clip is not None:
          clips.append(clip)
    for csv_path, table in attributes.items():
      # A training clip the CSV lists but the folder lacks means an incomplete copy; other
      # rows may name clips that are not there (evaluation clips renamed or released later).
      absent, others = [], []
      for name in sorted(set(table) - seen):
        match = TRAIN_OR_DEV_TEST.match(name)
        (absent if match and match['split'] == 'train' else others).append(name)
      problems += [f'{csv_path}: row {name} has no WAV file' for name in absent]
      if others:
        logging.warning('%s: %d test rows name no WAV file (first %s)', csv_path, len(others),
                        others[0])
  if clips:
    outliers = audio_check.dataset_outliers(clips)
    for clip in clips:
      if clip.path in outliers:
        problems.append(outliers[clip.path])
    clips = [c for c in clips if c.path not in outliers]
  if strict and problems:
    raise DatasetError.from_problems(problems)
  if not clips:
    raise DatasetError(f'{root}: no readable clips')
  return Manifest(os.path.abspath(root), clips, problems)


def without_bad_audio(manifest: Manifest, bad: dict[str, str], strict: bool) -> Manifest:
  """`manifest` less the clips `bad` names ({path: problem line}, e.g. from
  audio_check.content_problems); with `strict` any such clip raises them all."""
  lines = [bad[c.path] for c in manifest.clips if c.path in bad]
  problems = manifest.problems + lines
  if problems and strict:
    raise DatasetError.from_problems(problems)
  return Manifest(manifest.root, [c for c in manifest.clips if c.path not in bad], problems)


def checked_dataset(root: str, strict: bool, progress: bool = True, find_bad=None) -> Manifest:
  """The dataset at `root`, every clip's samples decoded and checked as well as its name and
  header: with `strict` any bad file raises them all, else bad files are left out and counted
  (Manifest.problems). `find_bad(manifest) -> {path: problem line}` may stand in for decoding
  every clip (the job keeps the verdicts of unchanged files)."""
  manifest = scan_dataset(root, strict=False)  # strict once decoded too
  bad = (find_bad(manifest) if find_bad else
         audio_check.content_problems([c.path for c in manifest.clips], progress))
  return without_bad_audio(manifest, bad, strict)


def _read_clip(path, dataset, machine, split, attributes, truth, problems) -> Clip | None:
  name = os.path.basename(path)
  if not name.lower().endswith('.wav'):
    problems.append(f'{path}: not a .wav file')
    return None
  try:
    parsed = parse_file_name(name)
  except DatasetError as e:
    problems.append(f'{path}: {str(e).split(": ", 1)[1]}')
    return None
  if parsed.split is not None and parsed.split != split:
    problems.append(f'{path}: named {parsed.split} but lies in {split}/')
    return None
  info, problem = audio_check.read_header(path)
  if problem:
    problems.append(problem)
    return None
  pairs = attribute_pairs(parsed.attribute_string)
  csv_path = os.path.join(os.path.dirname(os.path.dirname(path)),
                          f'attributes_{parsed.section}.csv')
  if csv_path in attributes and name in attributes[csv_path]:
    pairs = attributes[csv_path][name] or pairs
  label, domain = parsed.label, parsed.domain
  section_truth = truth.get((machine, parsed.section)) if split == 'test' else None
  if section_truth is not None:
    known = section_truth.clips.get(section_truth.aliases.get(name, name))
    if known is not None:
      label, domain = ('anomaly' if known[0] else 'normal'), known[1]
  return Clip(path=os.path.abspath(path), dataset=dataset, machine=machine,
              section=parsed.section, split=split, domain=domain, label=label,
              index=parsed.index, attribute_string=parsed.attribute_string, attributes=pairs,
              channels=info.channels, sample_rate=info.samplerate, num_samples=info.frames)
