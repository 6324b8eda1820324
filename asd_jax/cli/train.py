"""Train the configured encoder branches (LoRA, gated fusion, ArcFace heads).

asd-jax train --data_dir=D --workdir=W [--config=configs/X.py --config.field=value]

Trains the configured branches (config.branches) over all machine types: both channels through
the LoRA-adapted encoder, gated fusion, ArcFace attribute + domain heads. Writes
W/train/<branch>/checkpoints (Orbax) and W/train/<branch>/metrics.jsonl. A rerun skips a branch
whose config and clips are unchanged, resumes an interrupted one, continues one whose only
change is a higher train.steps, and moves one trained under another config to W/superseded/
before training it anew. The tiny default (configs/default.py) sets config.train.steps=0, no
adaptation: the initial state is written as the checkpoint; give --config.train.steps=150 to
train it as the report's recipe does.
"""
from absl import flags

from asd_jax.cli import common

_DATA = flags.DEFINE_string('data_dir', None, 'DCASE-layout dataset root', required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'output folder (resumed when it exists)',
                               required=True)
_CONFIG = common.define_config_flag()
_STRICT = common.define_strict_flag()


def main(argv):
  common.reject_positional(argv)
  from asd_jax.data import layout
  from asd_jax.io import WorkdirError
  try:  # the data first: a missing folder is named before any config value is checked
    layout.scan_dataset(_DATA.value, _STRICT.value)
  except layout.DatasetError as e:
    common.fail_lines(e.problems)
  config = common.prepared_config(_CONFIG)
  from asd_jax import job
  try:
    job.train_only(config, _DATA.value, _WORKDIR.value, strict=_STRICT.value)
  except layout.DatasetError as e:
    common.fail_lines(e.problems)
  except WorkdirError as e:
    common.fail(str(e))
