"""The default system on machine families it has never seen: held-out sets × seeds × variants.

python -m research.heldout.evaluate --out_dir=O [--sets=A,B --seeds=0,1,2 --variants=default,...
  --define=NAME:FIELD=VALUE,...]

For each held-out set (research/heldout/families.py: families outside the pre-training corpus and the
built-in data, their own clip lengths and bank sizes) and seed, writes the dataset
(O/data/<set>_seed<s>, data seed = s) and runs the whole job on it (O/runs/<variant>/<set>_seed<s>,
config.seed = s), in process and resumable. Variants are the ablations of VARIANTS: config
overrides of the default; a variant that only rescores copies the default run's branches
and embeddings instead of embedding again. Writes O/heldout.json (every official score, with
the commit and package versions it was measured with: the AE baselines' long float32 training
moves with a package build) and O/heldout.md (mean ± std over seeds per set and system).
"""
from __future__ import annotations

import csv
import importlib.metadata
import json
import os
import shutil
import subprocess
import time

import numpy as np
from absl import app, flags, logging

_OUT = flags.DEFINE_string('out_dir', 'heldout_eval', 'output folder (resumed when it exists)')
_SETS = flags.DEFINE_list('sets', ['A', 'B'], 'held-out sets (research/heldout/families.py SETS)')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2'], 'data and model seeds')
_VARIANTS = flags.DEFINE_list('variants', ['default'], 'variants to run, from VARIANTS')
_DEFINE = flags.DEFINE_multi_string(
    'define', [], 'an extra variant for this invocation, NAME:FIELD=VALUE[,FIELD=VALUE...] as '
    'config overrides of the default (e.g. a candidate encoder: '
    'beats_8x8:beats.checkpoint=O/beats); list NAME in --variants to run it')

# name: (what it tests, config overrides, the variant whose branches and embeddings it reuses)
VARIANTS = {
    'default': ('the default config: shipped corpus-pre-trained encoders, not adapted '
                '(train.steps=0), the fbank level and the log-mel level over the whole clip '
                'scored beside the BEATs embedding (score.clip_banks)', {}, None),
    'lora_arcface': ("LoRA + ArcFace trained for 150 steps (the report's recipe; the default "
                     'until 2026-12-02)', {'train.steps': 150}, None),
    'dataset_pretrain': ('encoders pre-trained on the dataset itself (600 steps), no shipped '
                         'priors', {'beats.checkpoint': '', 'audiomae.checkpoint': ''}, None),
    'random_init': ('random frozen encoders (no pre-training)',
                    {'beats.checkpoint': '', 'audiomae.checkpoint': '', 'pretrain.steps': 0},
                    None),
    'bank_raw': ("BEATs banks compared on raw distances (score.bank_calibration='none', the "
                 "report's)", {'score.bank_calibration': 'none'}, 'default'),
    'mean_pooling': ("the report's mean over every token (model.pooling=mean; the default until "
                     '2026-12-02)', {'model.pooling': 'mean'}, None),
    'no_level': ('the BEATs branch scores its embedding and the log-mel level, no fbank level '
                 "(score.clip_banks=('logmel_level',))",
                 {'score.clip_banks': ('logmel_level',)}, 'default'),
    'no_logmel_level': ("the BEATs branch does not score the log-mel level "
                        "(score.clip_banks=('fbank_level',); the default until set O)",
                        {'score.clip_banks': ('fbank_level',)}, 'default'),
    'no_clip_banks': ("the BEATs branch scores its embedding alone, as the report "
                      "(score.clip_banks=())", {'score.clip_banks': ()}, 'default'),
    'one_crop': ('one centred 2-s crop per clip embedded instead of three',
                 {'embed.windows': 1}, 'default'),
}
# Variants of options deleted since (patch level, projected patch embedding, fbank modulation,
# meanstd and attentive pooling, the level's weight, the fbank level over the crops) are in
# 52a2239 (docs/heldout.md names each).


def define_variant(spec: str) -> str:
  """Adds the variant NAME:FIELD=VALUE[,FIELD=VALUE...] to VARIANTS; returns NAME. A value is
  read as a Python literal where it is one (8, 0.5, False), else kept as a string (a path)."""
  import ast
  from asd_jax.configs import default
  fields = default.get_config()
  name, _, overrides = spec.partition(':')
  if not name or not overrides or name in VARIANTS:
    raise ValueError(f'--define={spec!r}: expected NAME:FIELD=VALUE[,...] with a new NAME')
  values = {}
  for item in overrides.split(','):
    path, equals, text = item.partition('=')
    if not equals or not path:
      raise ValueError(f'--define={spec!r}: {item!r} is not FIELD=VALUE')
    *parents, leaf = path.split('.')
    node = fields
    for part in parents:
      node = node.get(part) if isinstance(node, (dict, type(fields))) else None
    if node is None or leaf not in node:  # the default config would grow the field silently
      raise ValueError(f'--define={spec!r}: the config has no field {path!r}')
    try:
      values[path] = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      values[path] = text
  VARIANTS[name] = (f'defined on the command line: {overrides}', values, None)
  return name


def variant_config(name: str, seed: int):
  from asd_jax.configs import default
  config = default.get_config()
  config.seed = seed
  for path, value in VARIANTS[name][1].items():
    *parents, leaf = path.split('.')
    node = config
    for part in parents:
      node = node[part]
    node[leaf] = value
  return config


def official_scores(workdir: str) -> dict[str, float]:
  """{system column title: official score (%)} from W/results.csv."""
  from asd_jax.evaluation.metrics import OFFICIAL_SCORE
  with open(os.path.join(workdir, 'results.csv')) as f:
    rows = list(csv.reader(f))
  row = next(r for r in rows if r[1] == OFFICIAL_SCORE)
  return {title: float(v) for title, v in zip(rows[0][2:], row[2:])}


MEASURED_WITH = ('jax', 'jaxlib', 'flax', 'optax', 'numpy', 'scikit-learn', 'librosa')


def environment() -> dict:
  """{'commit': HEAD of this checkout ('+dirty' with uncommitted changes; None outside git),
  'packages': {name: version}} for MEASURED_WITH."""
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=repo, check=True,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=repo,
                           check=True, capture_output=True, text=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    commit, dirty = None, ''
  packages = {}
  for name in MEASURED_WITH:
    try:
      packages[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      packages[name] = None
  return {'commit': commit and commit + ('+dirty' if dirty else ''), 'packages': packages}


def run_one(variant: str, set_name: str, seed: int, out_dir: str) -> dict:
  from asd_jax import job
  from research.heldout.families import write_set
  data = os.path.join(out_dir, 'data', f'{set_name}_seed{seed}')
  if not os.path.isdir(data):
    write_set(set_name, seed, data)
  workdir = os.path.join(out_dir, 'runs', variant, f'{set_name}_seed{seed}')
  reuse = VARIANTS[variant][2]
  if reuse and not os.path.isdir(workdir):  # the run redoes what the variant changes
    shutil.copytree(os.path.join(out_dir, 'runs', reuse, f'{set_name}_seed{seed}'), workdir)
  start = time.perf_counter()
  job.run_job(variant_config(variant, seed), data, workdir, progress=False)
  return {'scores': official_scores(workdir), 'seconds': round(time.perf_counter() - start, 1),
          **environment()}


def summary_markdown(record: dict) -> str:
  lines = []
  for set_name in sorted({k.split('/')[1] for k in record}):
    lines += [f'### Held-out set {set_name}', '']
    variants = [v for v in VARIANTS if any(k.startswith(f'{v}/{set_name}/') for k in record)]
    systems = []
    for key, value in record.items():
      systems += [s for s in value['scores'] if s not in systems]
    lines += ['| variant | ' + ' | '.join(systems) + ' |', '|---|' + '---|' * len(systems)]
    for variant in variants:
      runs = [v for k, v in record.items() if k.startswith(f'{variant}/{set_name}/')]
      cells = []
      for system in systems:
        values = [r['scores'][system] for r in runs if system in r['scores']]
        cells.append(f'{np.mean(values):.1f} ± {np.std(values):.1f}' if values else '-')
      seeds = f'{len(runs)} seed' + ('s' if len(runs) > 1 else '')
      lines.append(f'| {variant} ({seeds}) | ' + ' | '.join(cells) + ' |')
    lines.append('')
  return '\n'.join(lines)


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # the jobs' library INFO logs drown the tables
  out_dir = os.path.abspath(_OUT.value)
  record_path = os.path.join(out_dir, 'heldout.json')
  from asd_jax.io import atomic_write_text

  def saved_record() -> dict:  # re-read before each write: other invocations may share O
    if not os.path.exists(record_path):
      return {}
    with open(record_path) as f:
      return json.load(f)

  record = saved_record()
  for spec in _DEFINE.value:
    try:
      define_variant(spec)
    except ValueError as e:
      raise app.UsageError(str(e))
  for variant in _VARIANTS.value:
    if variant not in VARIANTS:
      raise app.UsageError(f'unknown variant {variant!r}; choose from {sorted(VARIANTS)}')
    for set_name in _SETS.value:
      for seed in (int(s) for s in _SEEDS.value):
        key = f'{variant}/{set_name}/{seed}'
        if key in record:
          continue
        print(f'== {key}: {VARIANTS[variant][0]}', flush=True)
        result = run_one(variant, set_name, seed, out_dir)
        record = {**saved_record(), key: result}
        atomic_write_text(record_path, json.dumps(record, indent=1))
  table = summary_markdown(record)
  atomic_write_text(os.path.join(out_dir, 'heldout.md'), table)
  print(table)


if __name__ == '__main__':
  app.run(main)
