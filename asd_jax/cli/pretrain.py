"""Pre-train tiny encoders on your own normal recordings (masked fbank patches).

asd-jax pretrain --data_dir=D --output_dir=O [--config=NAME --branches=beats,audiomae]

For machines far from anything the shipped encoders heard: each branch's encoder of
config.<branch>.tiny starts from random weights and learns to fill in masked 16x16 fbank
patches of the dataset's normal training clips, both channels (config.pretrain: steps, batch,
mask ratio; the unit-contrastive term with pretrain.contrastive_weight > 0). Writes O/<branch>,
converted-checkpoint folders; use them with --config.<branch>.checkpoint=O/<branch>. No labels
are read. (`asd-jax run` does the same by itself for a branch configured without a checkpoint.)
How the shipped encoders were made, on a corpus of synthetic machine families:
research/pretraining/ and asd_jax/pretrained/MODEL_CARD.md.
"""
from absl import flags

from asd_jax.cli import common

_DATA = flags.DEFINE_string('data_dir', None, 'DCASE-layout dataset root: its normal training '
                            'clips are the pre-training data', required=True)
_OUTPUT = flags.DEFINE_string('output_dir', None, 'where the pre-trained encoders go, one '
                              'folder per branch', required=True)
_BRANCHES = flags.DEFINE_list('branches', ['beats', 'audiomae'], 'encoders to pre-train')
_CONFIG = common.define_config_flag()
_STRICT = common.define_strict_flag()


def main(argv):
  common.reject_positional(argv)
  import os
  from asd_jax.data import layout
  from asd_jax.data.labels import LabelSpace
  from asd_jax.model.build import ENCODER_KINDS
  unknown = set(_BRANCHES.value) - set(ENCODER_KINDS)
  if unknown:
    common.fail(f'--branches: unknown {sorted(unknown)}; choose from {list(ENCODER_KINDS)}')
  from asd_jax import workdir
  from asd_jax.io import WorkdirError
  from asd_jax.encoders.checkpoint import check_replaceable
  try:
    workdir.prepare(_OUTPUT.value, '--output_dir')
    for branch in _BRANCHES.value:  # written after the work: checked before it
      check_replaceable(os.path.join(_OUTPUT.value, branch))
  except (WorkdirError, OSError) as e:
    common.fail(str(e))
  try:
    manifest = layout.checked_dataset(_DATA.value, _STRICT.value)
  except layout.DatasetError as e:
    common.fail_lines(e.problems)
  for kind in ENCODER_KINDS:  # pre-training starts from random weights of config.<kind>.tiny
    _CONFIG.value[kind].checkpoint = ''
  config = common.prepared_config(_CONFIG)
  if config.pretrain.steps < 1:
    common.fail('config.pretrain.steps must be at least 1 to pre-train')
  from asd_jax.train import loop
  from asd_jax.train.pretrain import pretrain_encoder
  clips = loop.train_clips(manifest)
  labels = LabelSpace.from_clips(clips)
  for branch in _BRANCHES.value:
    out_dir = os.path.join(_OUTPUT.value, branch)
    log = pretrain_encoder(config, branch, clips, labels, loop.audio_config(config), out_dir)
    print(f'{branch}: {config.pretrain.steps} steps on {len(clips)} clips, final '
          f'{log[-1] if log else {}}; {out_dir}')
