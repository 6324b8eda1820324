"""Self-supervised pre-training of a tiny encoder by masked spectrogram-patch reconstruction.

The method adapts *pre-trained* encoders with LoRA on frozen weights. Real configs load converted
BEATs / AudioMAE checkpoints, and the tiny default loads the shipped corpus-pre-trained ones
(research/pretraining/, asd_jax/pretrained/). A random frozen transformer keeps too little spectral
detail for distance scoring, so a branch configured without a checkpoint pre-trains its encoder
on the dataset's normal training clips (both channels) before LoRA training, in the spirit of
AudioMAE: a share of the 16×16 fbank patches is blanked, and a linear head on each output token
reconstructs its patch — blanked ones, and visible ones with their own weight, so the tokens keep
what they see. The encoder is written as a converted-checkpoint folder (W/pretrained/<branch>),
which the training stage then loads like real weights. The objective and step are shared with
the corpus pre-training.

With pretrain.contrastive_weight > 0 the objective also tells units apart: each row's tokens,
pooled per frequency row and projected, must pick out the other microphone of its own clip
among the batch's rows (NT-Xent). The two microphones share the machine but not the room,
distance, noise or gain, so what the term rewards is what identifies the machine itself, which
is what an anomaly changes.
"""
from __future__ import annotations

import dataclasses
import logging
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from asd_jax import provenance
from asd_jax.audio import SAMPLE_RATE
from asd_jax.audio import fbank as fbank_lib
from asd_jax.data import pipeline
from asd_jax.data.labels import LabelSpace
from asd_jax.data.layout import Clip
from asd_jax.encoders.checkpoint import is_converted_dir, save_converted
from asd_jax.encoders.encoder import build_module, front_end_preset
from asd_jax.io import WorkdirError
from asd_jax.model.arcface import l2_normalize
from asd_jax.model.build import ENCODER_KINDS, encoder_config
from asd_jax.model.fusion import frequency_row_pooling
from asd_jax.train.step import make_optimizer


PROJECTION_DIM = 128  # the unit-contrastive projection (SimCLR-style head, dropped after)


def pretrained_dir(workdir: str, branch: str) -> str:
  return os.path.join(workdir, 'pretrained', branch)


def uses_pretraining(config: ml_collections.ConfigDict, branch: str) -> bool:
  """A branch pre-trains when it has no converted checkpoint and pretrain.steps > 0."""
  return not config[branch].checkpoint and config.pretrain.steps > 0


def with_pretrained_encoder(config: ml_collections.ConfigDict, branch: str,
                            workdir: str) -> ml_collections.ConfigDict:
  """The config whose branch loads the pre-trained tiny encoder (unchanged if not used)."""
  if not uses_pretraining(config, branch):
    return config
  folder = pretrained_dir(workdir, branch)
  if not is_converted_dir(folder):
    raise WorkdirError(f'{folder}: the {branch} encoder is not pre-trained yet (asd-jax run and '
                       'asd-jax train pre-train it first)')
  return provenance.with_value(config, f'{branch}.checkpoint', folder)


def patchify(fbank: jnp.ndarray, p: int) -> jnp.ndarray:
  """fbank [B, T, F] -> patches [B, N, p·p] in the encoders' token order (n = t·(F/p) + f),
  each patch flattened time-major; trailing T % p frames are dropped, as in PatchEmbed."""
  b, t, f = fbank.shape
  steps = t // p
  x = fbank[:, :steps * p].reshape(b, steps, p, f // p, p)
  return x.transpose(0, 1, 3, 2, 4).reshape(b, steps * (f // p), p * p)


def blank_patches(fbank: jnp.ndarray, mask: jnp.ndarray, p: int) -> jnp.ndarray:
  """Sets the patches where mask [B, N] is True to 0 (the normalised fbank's mean)."""
  b, t, f = fbank.shape
  steps = t // p
  keep = 1.0 - mask.reshape(b, steps, 1, f // p, 1).astype(fbank.dtype)
  kept = (fbank[:, :steps * p].reshape(b, steps, p, f // p, p) * keep).reshape(b, steps * p, f)
  return jnp.concatenate([kept, fbank[:, steps * p:]], axis=1)


class PatchReconstructor(nn.Module):
  """Encoder + a linear head from each patch token to its p·p fbank values; with
  projection_dim, also an MLP from the tokens pooled per frequency row to an L2-normalised
  projection for the unit-contrastive term (None without)."""
  encoder: nn.Module
  patch_values: int
  prefix_tokens: int  # tokens before the patch tokens (AudioMAE's cls)
  frequency_rows: int
  projection_dim: int = 0

  @nn.compact
  def __call__(self, fbank, deterministic: bool = True):
    tokens = self.encoder(fbank, deterministic=deterministic)[:, self.prefix_tokens:]
    tokens = tokens.astype(jnp.float32)
    reconstruction = nn.Dense(self.patch_values, name='reconstruction')(tokens)
    if not self.projection_dim:
      return reconstruction, None
    pooled = frequency_row_pooling(tokens, self.frequency_rows)
    hidden = nn.gelu(nn.Dense(2 * self.projection_dim, name='projector_hidden')(pooled))
    return reconstruction, l2_normalize(nn.Dense(self.projection_dim, name='projector')(hidden))


def reconstruction_loss(predicted, target, mask, visible_weight: float):
  """(loss, (masked-patch MSE, visible-patch MSE)); mask [B, N] True where blanked."""
  error = jnp.mean((predicted - target)**2, axis=-1)
  mask = mask.astype(jnp.float32)
  masked = jnp.sum(error * mask) / jnp.maximum(jnp.sum(mask), 1.0)
  visible = jnp.sum(error * (1 - mask)) / jnp.maximum(jnp.sum(1 - mask), 1.0)
  return masked + visible_weight * visible, (masked, visible)


def unit_contrastive_loss(projections, temperature: float):
  """(NT-Xent loss, top-1 pair accuracy) over L2-normalised rows [2B, E] in which rows 2i and
  2i + 1 are the two microphones of one clip and every other row is a negative."""
  n = projections.shape[0]
  similarity = projections @ projections.T / temperature
  similarity = jnp.where(jnp.eye(n, dtype=bool), -jnp.inf, similarity)
  partner = jnp.arange(n) ^ 1
  log_p = jax.nn.log_softmax(similarity, axis=-1)[jnp.arange(n), partner]
  return -jnp.mean(log_p), jnp.mean(jnp.argmax(similarity, axis=-1) == partner)


def make_pretrain_step(model: PatchReconstructor, preset, num_mel_bins: int, p: int,
                       tx: optax.GradientTransformation, mask_ratio: float,
                       visible_weight: float, contrastive_weight: float = 0.0,
                       temperature: float = 0.1):
  """Pure (params, opt_state, wave [R, S], rng) -> (params, opt_state, metrics); jit it.
  With contrastive_weight > 0, rows 2i and 2i + 1 must be two views of one clip."""

  def step(params, opt_state, wave, rng):
    fbank = fbank_lib.encoder_fbank(wave, preset, num_mel_bins)
    target = patchify(fbank, p)
    mask_rng, dropout_rng = jax.random.split(rng)
    mask = jax.random.uniform(mask_rng, target.shape[:2]) < mask_ratio

    def loss_fn(params):
      predicted, projections = model.apply({'params': params}, blank_patches(fbank, mask, p),
                                           deterministic=False, rngs={'dropout': dropout_rng})
      loss, (masked, visible) = reconstruction_loss(predicted, target, mask, visible_weight)
      metrics = {'masked_mse': masked, 'visible_mse': visible}
      if contrastive_weight:
        contrastive, accuracy = unit_contrastive_loss(projections, temperature)
        loss = loss + contrastive_weight * contrastive
        metrics.update(contrastive=contrastive, pair_accuracy=accuracy)
      return loss, metrics

    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, {'loss': loss, **metrics}

  return step


@dataclasses.dataclass
class PretrainingParts:
  """What a pre-training loop needs: the model's architecture, initial state and jitted step
  (which donates params and optimiser state)."""
  arch: object
  params: dict
  opt_state: object
  step: object
  rng: jax.Array
  samples: int  # wave samples per row


def pretraining_parts(config: ml_collections.ConfigDict, branch: str,
                      steps: int) -> PretrainingParts:
  """Seeded initial state of the branch's tiny encoder + reconstruction head, with
  config.pretrain's optimiser and masking over `steps` steps."""
  arch, converted = encoder_config(config, branch)
  if converted is not None:
    raise ValueError(f'config.{branch}.checkpoint is set: its encoder is already pre-trained')
  c = config.pretrain
  p = arch.patch_size
  preset = front_end_preset(arch)
  contrastive = c.contrastive_weight > 0
  model = PatchReconstructor(build_module(arch), p * p, arch.prefix_tokens,
                             arch.num_mel_bins // p, PROJECTION_DIM if contrastive else 0)
  samples = int(round(config.data.clip_seconds * SAMPLE_RATE))
  rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 100 + ENCODER_KINDS.index(branch))
  init_rng, rng = jax.random.split(rng)
  fbank = jax.eval_shape(lambda w: fbank_lib.encoder_fbank(w, preset, arch.num_mel_bins),
                         jax.ShapeDtypeStruct((1, samples), jnp.float32))
  params = jax.jit(model.init)(init_rng, jnp.zeros(fbank.shape, jnp.float32))['params']
  optim = ml_collections.ConfigDict(dict(  # pre-training's own rate and warm-up
      learning_rate=c.learning_rate, warmup_steps=c.warmup_steps,
      weight_decay=config.optim.weight_decay, grad_clip_norm=config.optim.grad_clip_norm))
  tx, _ = make_optimizer(optim, steps)
  step = jax.jit(make_pretrain_step(model, preset, arch.num_mel_bins, p, tx, c.mask_ratio,
                                    c.visible_weight, c.contrastive_weight,
                                    c.contrastive_temperature), donate_argnums=(0, 1))
  return PretrainingParts(arch, params, tx.init(params), step, rng, samples)


def pretrain_encoder(config: ml_collections.ConfigDict, branch: str, clips: list[Clip],
                     labels: LabelSpace, audio: pipeline.AudioConfig, out_dir: str,
                     progress: bool = True) -> list[dict]:
  """Pre-trains the branch's tiny encoder on `clips` (random crops and the training
  augmentation of `audio`) and writes it to `out_dir` atomically; returns the logged metrics.
  Not resumable: an interrupted pre-training starts again (minutes).
  """
  from tqdm import tqdm
  parts = pretraining_parts(config, branch, config.pretrain.steps)
  params, opt_state, c = parts.params, parts.opt_state, config.pretrain
  dataset = pipeline.train_dataset(pipeline.clip_records(clips, labels), audio, c.batch_size,
                                   seed=config.seed + 1, num_workers=config.data.num_workers,
                                   shard_by_process=False)
  iterator = iter(dataset)
  log = []
  for i in tqdm(range(1, c.steps + 1), desc=f'pretrain {branch}', unit='step',
                disable=not progress):
    wave = next(iterator)['wave']
    params, opt_state, metrics = parts.step(params, opt_state,
                                            jnp.asarray(wave.reshape(-1, wave.shape[-1])),
                                            jax.random.fold_in(parts.rng, i))
    if i % config.train.log_every == 0 or i == c.steps:
      log.append({'step': i, **{k: float(v) for k, v in jax.device_get(metrics).items()}})
  logging.info('%s pre-training: %s', branch, log[-1] if log else {})
  save_converted(out_dir, params['encoder'], parts.arch)
  return log
