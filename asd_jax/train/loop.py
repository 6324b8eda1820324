"""Training loop of one branch: Grain batches -> jitted step -> metrics, eval, checkpoints.

W/train/labels.json          attribute / machine vocabularies (shared by the branches)
W/train/<branch>/checkpoints Orbax (an interrupted run resumes; job.py decides when)
W/train/<branch>/metrics.jsonl one JSON object per logged step
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time

import jax
import ml_collections
import numpy as np

from asd_jax.data import labels as labels_lib
from asd_jax.data import pipeline
from asd_jax.data.layout import Clip, Manifest
from asd_jax.encoders import lora as lora_lib
from asd_jax.inference import embed
from asd_jax.io import atomic_write_text
from asd_jax.model import build
from asd_jax.train import checkpointing
from asd_jax.train import pretrain
from asd_jax.train import step as step_lib

MODEL_INPUTS = ('wave', 'attribute_id', 'domain_id')
# What `asd-jax run` and `asd-jax train` say of a branch trained for 0 steps.
NO_ADAPTATION = 'no adaptation (config.train.steps=0): the initial state is kept'


def branch_dir(workdir: str, branch: str) -> str:
  return os.path.join(workdir, 'train', branch)


def audio_config(config: ml_collections.ConfigDict) -> pipeline.AudioConfig:
  d = config.data
  return pipeline.AudioConfig(clip_seconds=d.clip_seconds, mono=d.mono, swap_prob=d.swap_prob,
                              gain_db=d.gain_db, channel_dropout_prob=d.channel_dropout_prob,
                              eval_windows=config.embed.windows)


def train_clips(manifest: Manifest) -> list[Clip]:
  """Normal training clips of every dataset (dev, and eval's additional training data)."""
  return [c for c in manifest.clips if c.split == 'train']


def split_holdout(clips: list[Clip], every: int) -> tuple[list[Clip], list[Clip]]:
  """(fit, held out): every k-th source clip of each machine is held out for monitoring."""
  fit, held = [], []
  counters: dict[str, int] = {}
  for clip in clips:
    if clip.domain == 'source':
      counters[clip.machine] = counters.get(clip.machine, 0) + 1
      if every and counters[clip.machine] % every == 0:
        held.append(clip)
        continue
    fit.append(clip)
  return fit, held


def label_space(manifest: Manifest, workdir: str) -> labels_lib.LabelSpace:
  """The vocabularies of the training clips (also written to W/train/labels.json to read)."""
  space = labels_lib.LabelSpace.from_clips(train_clips(manifest))
  if jax.process_index() == 0:  # shared outputs are written by process 0 only
    atomic_write_text(os.path.join(workdir, 'train', 'labels.json'), space.to_json())
  return space


@dataclasses.dataclass
class Branch:
  """Everything needed to run a trained branch: model, state, label space."""
  name: str
  model: object
  state: step_lib.TrainState
  labels: labels_lib.LabelSpace

  @property
  def params(self):
    return lora_lib.combine(self.state.trainable, self.state.frozen)


def initial_branch(config, branch: str, labels: labels_lib.LabelSpace, total_steps: int,
                   workdir: str):
  """(Branch at step 0, optimiser, schedule); a tiny encoder comes from its pre-training."""
  config = pretrain.with_pretrained_encoder(config, branch, workdir)
  model, params = build.build_branch(config, branch, labels.num_attributes)
  tx, schedule = step_lib.make_optimizer(config.optim, total_steps)
  state = step_lib.create_train_state(params, tx, build.is_trainable, config.seed)
  return Branch(branch, model, state, labels), tx, schedule


def load_trained(config, branch: str, manifest: Manifest, workdir: str) -> Branch:
  """The branch at its latest checkpoint (for embedding); fails if it was never trained."""
  labels = label_space(manifest, workdir)
  trained, _, _ = initial_branch(config, branch, labels, config.train.steps, workdir)
  manager = checkpointing.checkpoint_manager(
      os.path.join(branch_dir(workdir, branch), 'checkpoints'), config.train.keep_checkpoints)
  if manager.latest_step() is None:
    raise FileNotFoundError(f'{branch_dir(workdir, branch)}: no checkpoint; train first')
  trained.state = checkpointing.restore(manager, trained.state, None)
  return trained


def load_for_inference(config, branch: str, manifest: Manifest, workdir: str):
  """(model, params) of the trained branch for embedding: LoRA merged into the frozen kernels
  and the model built without adapters, so the embed stage and an exported detector
  (inference/detector.py) run the very same computation."""
  from asd_jax.encoders.config import LoRAConfig
  trained = load_trained(config, branch, manifest, workdir)
  params = dict(trained.params)
  params['encoder'] = lora_lib.merge_lora(params['encoder'], build.lora_config(config))
  model = build.branch_model(config, trained.model.encoder.config, trained.model.num_attributes,
                             LoRAConfig())
  return model, params


class MetricsLog:
  """Appends one JSON object per logged step; on resume drops lines past the checkpoint.
  Only process 0 writes (the other processes' logs would be the same lines)."""

  def __init__(self, path: str, resume_step: int):
    self.path = path if jax.process_index() == 0 else None
    if self.path is None:
      return
    lines = []
    if os.path.exists(path):
      with open(path) as f:
        lines = [l for l in f if l.strip() and json.loads(l)['step'] <= resume_step]
    atomic_write_text(path, ''.join(lines))

  def write(self, record: dict) -> None:
    if self.path is None:
      return
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')


def heldout_accuracy(predict, params, clips, labels, config) -> dict[str, float]:
  """Attribute and domain accuracy (argmax cosine) on held-out normal clips."""
  if not clips:
    return {}
  out = embed.model_outputs(predict, params, clips, audio_config(config),
                            config.embed.batch_size)
  ids = [labels.encode(c) for c in clips]
  attribute = np.array([i['attribute_id'] for i in ids])
  domain = np.array([i['domain_id'] for i in ids])
  result = {'eval_domain_acc': float(np.mean(out['domain_cos'].argmax(-1) == domain))}
  known = attribute >= 0
  if known.any():
    result['eval_attr_acc'] = float(np.mean(
        out['attribute_cos'][known].argmax(-1) == attribute[known]))
  return result


def pretrain_branch(config: ml_collections.ConfigDict, branch: str, manifest: Manifest,
                    workdir: str, progress: bool = True) -> None:
  """Pre-trains the branch's tiny encoder on the fitting clips into W/pretrained/<branch>."""
  fit, _ = split_holdout(train_clips(manifest), config.data.holdout_every)
  pretrain.pretrain_encoder(config, branch, fit, label_space(manifest, workdir),
                            audio_config(config), pretrain.pretrained_dir(workdir, branch),
                            progress)


def describe(summary: dict) -> str:
  """One line on what train_branch did."""
  if summary['skipped']:
    return f"already trained ({summary['steps']} steps)"
  if summary['steps'] == 0:
    return NO_ADAPTATION
  resumed = f" (resumed from step {summary['resumed_from']})" if summary['resumed_from'] else ''
  return f"trained to step {summary['steps']}{resumed}"


def train_branch(config: ml_collections.ConfigDict, branch: str, manifest: Manifest,
                 workdir: str, progress: bool = True, on_progress=None) -> dict:
  """Trains one branch, resuming from its newest checkpoint in W/train/<branch> (whose run the
  caller has checked is this one: job.py); returns a short summary. `on_progress()` is called
  once the run is set up (everything that shapes its state is read) and after each checkpoint,
  so a run killed at any point after that resumes."""
  from tqdm import tqdm
  total = config.train.steps
  out_dir = branch_dir(workdir, branch)
  manager = checkpointing.checkpoint_manager(os.path.join(out_dir, 'checkpoints'),
                                             config.train.keep_checkpoints)
  finished = manager.latest_step()
  if finished is not None and finished >= total:  # done: no model, data or compile needed
    return {'branch': branch, 'steps': finished, 'resumed_from': finished, 'skipped': True}
  labels = label_space(manifest, workdir)
  fit, held = split_holdout(train_clips(manifest), config.data.holdout_every)
  trained, tx, schedule = initial_branch(config, branch, labels, total, workdir)
  dataset = pipeline.train_dataset(pipeline.clip_records(fit, labels), audio_config(config),
                                   config.train.batch_size, seed=config.seed,
                                   num_workers=config.data.num_workers)
  iterator = iter(dataset)
  state = trained.state
  if finished is not None:
    state = checkpointing.restore(manager, state, iterator)
    logging.info('%s: resumed from step %d', branch, int(state.step))
  start_step = int(state.step)
  if start_step >= total:  # train.steps=0 on a new workdir: the initial state is the branch
    checkpointing.save(manager, state, iterator)
    if on_progress:
      on_progress()
    return {'branch': branch, 'steps': 0, 'resumed_from': 0, 'skipped': False}
  if on_progress:
    on_progress()
  log = MetricsLog(os.path.join(out_dir, 'metrics.jsonl'), start_step)
  mesh = step_lib.data_mesh()
  state = step_lib.replicate(mesh, state)
  train_step = step_lib.compile_train_step(mesh, model=trained.model, tx=tx, schedule=schedule,
                                           arcface=config.arcface)
  model = trained.model
  predict = jax.jit(lambda params, wave: model.apply({'params': params}, wave))
  bar = tqdm(total=total, initial=start_step, desc=f'train {branch}', unit='step',
             disable=not progress or jax.process_index() != 0)
  tick, last_logged = time.perf_counter(), start_step
  for step in range(start_step + 1, total + 1):
    batch = next(iterator)
    state, metrics = train_step(state, step_lib.shard_batch(
        mesh, {k: batch[k] for k in MODEL_INPUTS}))
    bar.update(1)
    evaluate = step % config.train.eval_every == 0 or step == total
    if step % config.train.log_every == 0 or evaluate:
      record = {'step': step, **{k: float(v) for k, v in jax.device_get(metrics).items()}}
      now = time.perf_counter()
      record['steps_per_sec'] = (step - last_logged) / (now - tick)
      if evaluate:
        params = step_lib.local_copy(lora_lib.combine(state.trainable, state.frozen))
        record.update(heldout_accuracy(predict, params, held, labels, config))
      tick, last_logged = time.perf_counter(), step
      log.write(record)
      bar.set_postfix(loss=f"{record['loss']:.3f}", gate=f"{record['gate_mean']:.2f}")
    if step % config.train.checkpoint_every == 0 or step == total:
      checkpointing.save(manager, state, iterator)
      if on_progress:
        on_progress()
  bar.close()
  return {'branch': branch, 'steps': total, 'resumed_from': start_step, 'skipped': False}
