"""Say which stages of a workdir are done, stale (and why) or missing.

asd-jax status --workdir=W [--data_dir=D] [--config=NAME --config.field=value]

Give the data and config the next `asd-jax run` would get: each stage is compared with what it
was made from (the config fields it read, its clips, the weights it loaded, the stages it
consumes), exactly as that run would compare it. Nothing is decoded, trained or written.
"""
import os

from absl import flags

from asd_jax.cli import common

_WORKDIR = flags.DEFINE_string('workdir', None, 'the workdir to inspect', required=True)
_DATA = flags.DEFINE_string('data_dir', None, 'the dataset the next run gets (default: the '
                            'built-in one in W/data)')
_CONFIG = common.define_config_flag()


def main(argv):
  common.reject_positional(argv)
  from asd_jax import job
  from asd_jax.data import layout
  workdir = os.path.abspath(_WORKDIR.value)
  config = common.prepared_config(_CONFIG)
  status = job.Job(config, workdir, progress=False)
  status.synthetic = _DATA.value is None
  data_dir = _DATA.value or os.path.join(workdir, 'data')
  if status.synthetic and not os.path.isdir(data_dir):
    print('synth  missing (the built-in dataset is written first; every stage after it is '
          'missing)')
    return
  try:
    manifest = status.scanned_dataset(data_dir)
  except layout.DatasetError as e:
    common.fail_lines(e.problems)
  rows = status.status(manifest)
  width = max(len(name) for name, _ in rows)
  for name, state in rows:
    print(f'{name:<{width}}  {state}')
