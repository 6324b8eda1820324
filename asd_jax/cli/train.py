"""Train the configured encoder branches (LoRA, gated fusion, ArcFace heads).

asd-jax train --data_dir=D --workdir=W [--config=configs/X.py --config.field=value]

Trains the configured branches (config.branches) over all machine types: both channels through
the LoRA-adapted encoder, gated fusion, ArcFace attribute + domain heads. Writes
W/train/<branch>/checkpoints (Orbax) and W/train/<branch>/metrics.jsonl. Rerunning resumes from
the newest checkpoint; a finished branch is skipped. The tiny default (configs/default.py) sets
config.train.steps=0, no adaptation: the initial state is written as the checkpoint; give
--config.train.steps=150 to train it as the report's recipe does.
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
  config = common.prepared_config(_CONFIG)
  from asd_jax.data import audio_check, layout
  from asd_jax.io import WorkdirError
  from asd_jax.train import loop
  try:
    manifest = layout.scan_dataset(_DATA.value, strict=False)  # strict once decoded too
    manifest = layout.without_bad_audio(
        manifest, audio_check.content_problems(c.path for c in manifest.clips), _STRICT.value)
  except layout.DatasetError as e:
    common.fail_lines(e.problems)
  if manifest.problems:
    print(manifest.skipped_report())
  for branch in config.branches:
    try:
      summary = loop.train_branch(config, branch, manifest, _WORKDIR.value)
    except WorkdirError as e:
      common.fail(str(e))
    if summary['skipped']:
      state = 'already finished'
    elif summary['steps'] == 0:
      state = loop.NO_ADAPTATION
    else:
      state = f"trained to step {summary['steps']}" + (
          f" (resumed from {summary['resumed_from']})" if summary['resumed_from'] else '')
    print(f'{branch}: {state}; {loop.branch_dir(_WORKDIR.value, branch)}')
