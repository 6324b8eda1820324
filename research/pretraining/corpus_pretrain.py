"""Long self-supervised pre-training of the tiny encoders on the synthetic corpus: the run that
made the shipped weights in asd_jax/pretrained/.

python -m research.pretraining.corpus_pretrain --workdir=W --output_dir=O
    [--branches=beats,audiomae --steps --pool_clips --config.pretrain.contrastive_weight=0.5]

Writes O/<branch> (converted-checkpoint folders that config.<branch>.checkpoint loads),
W/<branch>/{checkpoints,loss.jsonl,summary.json} and W/loss_curve.png. The shipped encoders:
--output_dir=asd_jax/pretrained (asd_jax/pretrained/MODEL_CARD.md gives the exact command).

The objective is the per-dataset one of `pretrain` (masked fbank-patch reconstruction, and the
unit-contrastive term when pretrain.contrastive_weight > 0), on a
pool of corpus clips (both channels as rows, random 2-s crops, random gain per channel) for
many more steps. Resumable: params and optimiser state go to an Orbax checkpoint every
`save_every` steps, and the batches are a pure function of (corpus seed, step), so a resumed
run sees exactly the batches an uninterrupted one would have.
"""
from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from absl import app, flags

from asd_jax.encoders.checkpoint import save_converted
from asd_jax.io import atomic_write_text
from asd_jax.train.pretrain import pretraining_parts
from research.pretraining import corpus

POOL_SECONDS = 3.0  # each pool clip; crops of config.data.clip_seconds are drawn from it
GAIN_DB = 6.0


def build_pool(seed: int, clips: int, progress: bool = True) -> np.ndarray:
  """[clips, 2, POOL_SECONDS·16 kHz] float16 corpus clips (float16 halves the memory; the
  fbank's log makes its 1e-3 relative rounding invisible)."""
  from tqdm import tqdm
  first = corpus.corpus_clip(seed, 0, POOL_SECONDS)
  pool = np.empty((clips, *first.shape), np.float16)
  for i in tqdm(range(clips), desc='corpus', unit='clip', disable=not progress):
    pool[i] = first if i == 0 else corpus.corpus_clip(seed, i, POOL_SECONDS)
  return pool


def corpus_batch(pool: np.ndarray, seed: int, step: int, batch: int, samples: int,
                 unit_pairs: bool = False) -> np.ndarray:
  """[2·batch, samples]: `batch` random crops of random pool clips, both channels as rows
  (2i near, 2i + 1 far), each channel with its own random gain; a pure function of (seed,
  step). With unit_pairs (the unit-contrastive term), every clip of the batch is of one random
  family, so the negatives are other units of it, and the two channels are cropped at
  independent times, so a pair shares the machine and nothing that a time offset fixes."""
  rng = np.random.default_rng(np.random.SeedSequence([seed, 1, step]))
  if unit_pairs:
    families = len(corpus.FAMILIES)  # pool clip i is of family i % families (corpus_clip)
    family = rng.integers(min(families, len(pool)))
    index = family + families * rng.integers((len(pool) - 1 - family) // families + 1,
                                             size=batch)
    start = rng.integers(0, pool.shape[-1] - samples + 1, size=(batch, 2))
  else:
    index = rng.integers(len(pool), size=batch)
    start = np.repeat(rng.integers(0, pool.shape[-1] - samples + 1, size=(batch, 1)), 2, 1)
  gain = 10**(rng.uniform(-GAIN_DB, GAIN_DB, (batch, 2, 1)) / 20)
  crops = np.stack([[pool[i, c, s[c]:s[c] + samples] for c in range(2)]
                    for i, s in zip(index, start)]).astype(np.float32)
  return (crops * gain).reshape(2 * batch, samples)


def loss_curve(workdir: str, branch: str) -> list[dict]:
  """The logged metrics of W/<branch>/loss.jsonl, in step order."""
  with open(os.path.join(os.path.abspath(workdir), branch, 'loss.jsonl')) as f:
    return [json.loads(line) for line in f]


def pretrain_on_corpus(config: ml_collections.ConfigDict, branch: str, workdir: str,
                       output_dir: str, steps: int, pool_clips: int, corpus_seed: int = 0,
                       save_every: int = 500, progress: bool = True) -> dict:
  """Pre-trains config.<branch>.tiny on the corpus and writes the encoder to `output_dir` as a
  converted-checkpoint folder; W/<branch>/ keeps the Orbax checkpoints and loss.jsonl.
  Returns the run's summary (also written to W/<branch>/summary.json) and, under 'curve', every
  logged step's metrics."""
  from tqdm import tqdm
  config = ml_collections.ConfigDict(config.to_dict())
  config[branch].checkpoint = ''  # the tiny architecture, randomly initialised
  parts = pretraining_parts(config, branch, steps)
  params, opt_state = parts.params, parts.opt_state
  run_dir = os.path.join(os.path.abspath(workdir), branch)
  manager = ocp.CheckpointManager(
      os.path.join(run_dir, 'checkpoints'),
      options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True))
  start = manager.latest_step() or 0
  log_path = os.path.join(run_dir, 'loss.jsonl')
  if start:
    saved = manager.restore(start, args=ocp.args.StandardRestore(
        {'params': params, 'opt_state': opt_state}))
    params, opt_state = saved['params'], saved['opt_state']
    with open(log_path) as f:  # drop what was logged after the checkpoint
      kept = [line for line in f if json.loads(line)['step'] <= start]
    atomic_write_text(log_path, ''.join(kept))
    print(f'{branch}: resuming corpus pre-training from step {start}')
  elif os.path.exists(log_path):
    os.remove(log_path)
  pool = build_pool(corpus_seed, pool_clips, progress)
  began = time.perf_counter()
  c = config.pretrain
  with open(log_path, 'a') as log:
    for i in tqdm(range(start + 1, steps + 1), desc=f'pretrain {branch}', unit='step',
                  initial=start, total=steps, disable=not progress):
      wave = corpus_batch(pool, corpus_seed, i, c.batch_size, parts.samples,
                          unit_pairs=c.contrastive_weight > 0)
      params, opt_state, metrics = parts.step(params, opt_state, jnp.asarray(wave),
                                              jax.random.fold_in(parts.rng, i))
      if i % config.train.log_every == 0 or i == steps:
        values = {k: round(float(v), 5) for k, v in jax.device_get(metrics).items()}
        log.write(json.dumps({'step': i, **values}) + '\n')
        log.flush()
      if i % save_every == 0 or i == steps:
        manager.save(i, args=ocp.args.StandardSave({'params': params, 'opt_state': opt_state}))
        manager.wait_until_finished()
  save_converted(output_dir, params['encoder'], parts.arch)
  curve = loss_curve(workdir, branch)
  summary = {'branch': branch, 'steps': steps, 'batch_clips': c.batch_size,
             'pool_clips': pool_clips, 'corpus_seed': corpus_seed,
             'pretrain': c.to_dict(),
             'families': sorted(corpus.FAMILIES), 'seconds_this_run':
             round(time.perf_counter() - began, 1), 'resumed_from': start,
             'final': curve[-1] if curve else {}, 'tiny': config[branch].tiny.to_dict()}
  atomic_write_text(os.path.join(run_dir, 'summary.json'), json.dumps(summary, indent=2))
  return {**summary, 'curve': curve}


_WORKDIR = flags.DEFINE_string('workdir', None, 'run folder (resumed when it exists)')
_OUTPUT = flags.DEFINE_string('output_dir', None, 'where the pre-trained encoders go, one '
                              'folder per branch')
_BRANCHES = flags.DEFINE_list('branches', ['beats', 'audiomae'], 'encoders to pre-train')
_STEPS = flags.DEFINE_integer('steps', 6000, 'optimiser steps (cosine decay reaches 0 here)')
_POOL = flags.DEFINE_integer('pool_clips', 4096, 'corpus clips (3 s each) in the pool')
_SEED = flags.DEFINE_integer('corpus_seed', 0, 'seed of the corpus and the batch order')
_SAVE = flags.DEFINE_integer('save_every', 500, 'Orbax checkpoint every k steps')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not _WORKDIR.value or not _OUTPUT.value:
    raise app.UsageError('--workdir and --output_dir are required')
  if min(_STEPS.value, _POOL.value, _SAVE.value) < 1:
    raise app.UsageError('--steps, --pool_clips and --save_every must be at least 1')
  from asd_jax.evaluation import plots
  config = _CONFIG.value  # defined with the flags of a command-line run, below
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


if __name__ == '__main__':  # the --config flag only here: asd_jax's commands define their own
  from ml_collections import config_flags

  from asd_jax.cli.common import config_path
  _CONFIG = config_flags.DEFINE_config_file('config', config_path('default'),
                                            'the config whose tiny sizes and pretrain.* apply')
  app.run(main)
