"""Write the built-in synthetic two-channel DCASE-style dataset.

asd-jax synth --output_dir=D [--seed --machines --clip_seconds --severity_range ...]

Official layout (dev_data/raw/<machine>/{train,test}, attributes_00.csv) with ground truth in
D/ground_truth/ (domains 0 = source, 1 = target, as the official evaluator reads them).
Deterministic for a --seed.
"""
import time

from absl import flags

from asd_jax.cli import common
from asd_jax.data import synthetic
from asd_jax.data.machine_families import BUILTIN

_OUTPUT = flags.DEFINE_string('output_dir', None, 'folder to create (must not exist or be empty)',
                              required=True)
_SEED = flags.DEFINE_integer('seed', 0, 'random seed; the same seed writes identical files')
_MACHINES = flags.DEFINE_list('machines', list(synthetic.SynthConfig.machines),
                              f'machine types, of {sorted(BUILTIN)} (the held-out families of '
                              'docs/heldout.md are written by research/heldout/)')
_SECONDS = flags.DEFINE_float('clip_seconds', synthetic.SynthConfig.clip_seconds,
                              'length of every clip in seconds')
_SOURCE = flags.DEFINE_integer('source_train', synthetic.SynthConfig.source_train,
                               'normal source-domain training clips per machine')
_TARGET = flags.DEFINE_integer('target_train', synthetic.SynthConfig.target_train,
                               'normal target-domain training clips per machine')
_TEST = flags.DEFINE_integer('test_per_group', synthetic.SynthConfig.test_per_group,
                             'test clips per (domain, normal/anomaly) and machine')
_SEVERITY = flags.DEFINE_list(
    'severity_range', [str(v) for v in synthetic.SynthConfig.severity_range],
    'low,high: the strength of each anomaly is drawn uniformly from this range (the default '
    'puts the official baselines near their published dev-set scores; 0.1,1.0 is easier)')


def main(argv):
  common.reject_positional(argv)
  try:
    severity = tuple(float(v) for v in _SEVERITY.value)
  except ValueError:
    common.fail(f'--severity_range needs numbers, low,high; got {",".join(_SEVERITY.value)}')
  try:
    config = synthetic.SynthConfig(tuple(_MACHINES.value), _SECONDS.value, _SOURCE.value,
                                   _TARGET.value, _TEST.value, _SEED.value, severity)
  except ValueError as e:
    common.fail(str(e))
  from tqdm import tqdm
  start = time.perf_counter()
  try:
    count = synthetic.generate(_OUTPUT.value, config,
                               progress=lambda clips, total: tqdm(clips, total=total, desc='synth',
                                                                 unit='clip'))
  except OSError as e:  # not empty (no errno), or a file in the way, no permission
    common.fail(str(e) if e.errno is None else
                f'--output_dir={_OUTPUT.value}: cannot be created or written ({e.strerror})')
  except ValueError as e:
    common.fail(str(e))
  print(f'wrote {count} clips to {_OUTPUT.value} in {time.perf_counter() - start:.1f} s')
