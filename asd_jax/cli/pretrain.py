"""Pre-train the tiny encoders on the synthetic corpus (the shipped weights).

asd-jax pretrain --workdir=W --output_dir=O [--branches=beats,audiomae --steps --pool_clips]

Masked fbank-patch reconstruction on a pool of corpus clips (asd_jax/data/corpus.py: twelve
randomised machine families, random rooms, microphone distances and noises), both channels,
random crops. Writes O/<branch> (converted-checkpoint folders that config.<branch>.checkpoint
loads), W/<branch>/{checkpoints,loss.jsonl,summary.json} and W/loss_curve.png. Rerunning
resumes. The shipped encoders: --output_dir=asd_jax/pretrained (asd_jax/pretrained/MODEL_CARD.md).
"""
from absl import flags

from asd_jax.cli import common

_WORKDIR = flags.DEFINE_string('workdir', None, 'run folder (resumed when it exists)',
                               required=True)
_OUTPUT = flags.DEFINE_string('output_dir', None, 'where the pre-trained encoders go, one '
                              'folder per branch', required=True)
_BRANCHES = flags.DEFINE_list('branches', ['beats', 'audiomae'], 'encoders to pre-train')
_STEPS = flags.DEFINE_integer('steps', 6000, 'optimiser steps (cosine decay reaches 0 here)')
_POOL = flags.DEFINE_integer('pool_clips', 4096, 'corpus clips (3 s each) in the pool')
_SEED = flags.DEFINE_integer('corpus_seed', 0, 'seed of the corpus and the batch order')
_SAVE = flags.DEFINE_integer('save_every', 500, 'Orbax checkpoint every k steps')
_CONFIG = common.define_config_flag()


def main(argv):
  common.reject_positional(argv)
  import os
  from asd_jax.model.build import ENCODER_KINDS
  for kind in ENCODER_KINDS:  # pre-training starts from random weights of config.<kind>.tiny
    _CONFIG.value[kind].checkpoint = ''
  config = common.prepared_config(_CONFIG)
  from asd_jax.evaluation import plots
  from asd_jax.train.corpus_pretrain import pretrain_on_corpus
  unknown = set(_BRANCHES.value) - set(ENCODER_KINDS)
  if unknown:
    common.fail(f'--branches: unknown {sorted(unknown)}; choose from {list(ENCODER_KINDS)}')
  if min(_STEPS.value, _POOL.value, _SAVE.value) < 1:
    common.fail('--steps, --pool_clips and --save_every must be at least 1')
  curves = {}
  for branch in _BRANCHES.value:
    summary = pretrain_on_corpus(config, branch, _WORKDIR.value,
                                 os.path.join(_OUTPUT.value, branch), _STEPS.value, _POOL.value,
                                 _SEED.value, _SAVE.value)
    curves[branch] = summary['curve']
    print(f"{branch}: {summary['steps']} steps, final {summary['final']}; "
          f"{os.path.join(_OUTPUT.value, branch)}")
  print('loss curves:', plots.plot_loss_curves(os.path.join(_WORKDIR.value, 'loss_curve.png'),
                                               curves))
