"""Builds a branch's ASDModel and its initial parameters from a config."""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections

from asd_jax.audio import SAMPLE_RATE
from asd_jax.encoders import lora as lora_lib
from asd_jax.encoders.checkpoint import load_converted, read_config
from asd_jax.encoders.config import AudioMAEConfig, BeatsConfig, LoRAConfig
from asd_jax.encoders.encoder import build_module, front_end_preset
from asd_jax.encoders.layers import ATTENTION, REMAT_POLICIES
from asd_jax.model.asd_model import POOLINGS, ASDModel
from asd_jax.scoring.clip_banks import REGISTRY as CLIP_BANKS
from asd_jax.scoring.normal_reference import BANK_CALIBRATIONS

ENCODER_KINDS = ('beats', 'audiomae')
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


class ConfigError(ValueError):
  """A config value that cannot work; one line, raised before anything is compiled."""


def lora_config(config: ml_collections.ConfigDict) -> LoRAConfig:
  try:
    return LoRAConfig(rank=config.lora.rank, alpha=config.lora.alpha,
                      dropout=config.lora.dropout, targets=tuple(config.lora.targets))
  except ValueError as e:
    raise ConfigError(f'config.lora: {e}') from e


def validate(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Checks the values a run depends on, so a typo fails in one line and not inside XLA."""
  for name in config.branches:
    if name not in ENCODER_KINDS:
      raise ConfigError(f'config.branches: unknown encoder {name!r}; choose from {ENCODER_KINDS}')
    checkpoint = config[name].checkpoint
    if checkpoint and not os.path.isfile(os.path.join(checkpoint, 'config.json')):
      raise ConfigError(f'config.{name}.checkpoint: {checkpoint} is not a converted checkpoint '
                        'folder (make one with python -m checkpoints_convert)')
  if config.lora.rank <= 0:
    raise ConfigError(f'config.lora.rank must be > 0 (got {config.lora.rank}): only LoRA '
                      'weights are trained')
  lora_config(config)
  if config.model.pooling not in POOLINGS:
    raise ConfigError(f'config.model.pooling: {config.model.pooling!r} is not one of {POOLINGS}')
  if config.model.remat not in REMAT_POLICIES:
    raise ConfigError(f'config.model.remat: {config.model.remat!r} is not one of '
                      f'{list(REMAT_POLICIES)}')
  if config.model.dtype not in DTYPES:
    raise ConfigError(f'config.model.dtype: {config.model.dtype!r} is not one of {list(DTYPES)}')
  if attention(config) not in ATTENTION:
    raise ConfigError(f'config.model.attention: {attention(config)!r} is not one of '
                      f'{list(ATTENTION)}')
  if attention(config) == 'fused' and config.train.steps > 0:
    for name in config.branches:
      dropout = getattr(architecture(config, name), 'attention_dropout', 0.0)
      if dropout > 0:
        raise ConfigError(f"config.model.attention: 'fused' has no attention dropout and the "
                          f'{name} encoder trains with {dropout}; use \'matmul\' to train it')
  if config.train.batch_size % num_devices:
    raise ConfigError(f'config.train.batch_size {config.train.batch_size} does not split over '
                      f'{num_devices} devices')
  if config.train.steps < 0 or config.train.batch_size <= 0:
    raise ConfigError('config.train.steps must be >= 0 (0: no adaptation) and '
                      'config.train.batch_size positive')
  if config.pretrain.steps < 0 or not 0.0 < config.pretrain.mask_ratio < 1.0:
    raise ConfigError('config.pretrain: steps must be >= 0 and mask_ratio in (0, 1)')
  if config.pretrain.contrastive_weight < 0 or config.pretrain.contrastive_temperature <= 0:
    raise ConfigError('config.pretrain: contrastive_weight must be >= 0 and '
                      'contrastive_temperature > 0')
  if config.score.bank_calibration not in BANK_CALIBRATIONS:
    raise ConfigError(f'config.score.bank_calibration: {config.score.bank_calibration!r} is not '
                      f'one of {BANK_CALIBRATIONS}')
  unknown = [name for name in config.score.clip_banks if name not in CLIP_BANKS]
  if unknown:
    raise ConfigError(f'config.score.clip_banks: unknown {unknown}; choose from '
                      f'{list(CLIP_BANKS)}')
  if config.data.clip_seconds <= 0.2:
    raise ConfigError('config.data.clip_seconds must exceed 0.2 s')
  if config.baseline.epochs < 0:
    raise ConfigError(f'config.baseline.epochs must be >= 0 (got {config.baseline.epochs})')
  if config.embed.windows < 1:
    raise ConfigError(f'config.embed.windows must be at least 1 (got {config.embed.windows})')


def encoder_config(config: ml_collections.ConfigDict, branch: str):
  """(architecture config, converted params or None) for a branch."""
  spec = config[branch]
  if spec.checkpoint:
    params, arch = load_converted(spec.checkpoint)
    if arch.kind != branch:
      raise ConfigError(f'config.{branch}.checkpoint: {spec.checkpoint} holds a {arch.kind} '
                        'encoder')
    return arch, params
  return architecture(config, branch), None


def architecture(config: ml_collections.ConfigDict, branch: str):
  """A branch's encoder architecture without loading weights: its converted folder's
  config.json, or the random encoder's `tiny` sizes."""
  spec = config[branch]
  if spec.checkpoint:
    return read_config(spec.checkpoint)
  tiny = dict(spec.tiny)
  arch = BeatsConfig(**tiny) if branch == 'beats' else AudioMAEConfig(**tiny)
  arch.validate()
  return arch


def attention(config: ml_collections.ConfigDict) -> str:
  """config.model.attention; 'matmul' for the configs written before it existed (an older
  workdir or detector), which all computed attention that way."""
  return config.model.get('attention', 'matmul')


def branch_model(config: ml_collections.ConfigDict, arch, num_attributes: int,
                 lora: LoRAConfig | None = None, remat: str = 'none') -> ASDModel:
  """The ASDModel around an encoder architecture (no LoRA: an exported model, LoRA merged)."""
  dtype = DTYPES[config.model.dtype]
  return ASDModel(encoder=build_module(arch, lora, dtype, remat, attention(config)),
                  preset=front_end_preset(arch),
                  num_mel_bins=arch.num_mel_bins, num_attributes=num_attributes,
                  embed_dim=config.model.embed_dim, pooling=config.model.pooling,
                  gate_bias_init=config.model.gate_bias_init,
                  frequency_rows=arch.num_mel_bins // arch.patch_size,
                  leading_tokens=1 if arch.kind == 'audiomae' else 0, dtype=dtype)


def build_branch(config: ml_collections.ConfigDict, branch: str, num_attributes: int):
  """(model, initial params): converted or seeded-random encoder + LoRA, fusion, heads."""
  arch, converted = encoder_config(config, branch)
  model = branch_model(config, arch, num_attributes, lora_config(config), config.model.remat)
  samples = int(round(config.data.clip_seconds * SAMPLE_RATE))
  rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), ENCODER_KINDS.index(branch))
  params = jax.jit(lambda r: model.init(r, jnp.zeros((1, 2, samples), jnp.float32))['params'])(rng)
  if converted is not None:
    params = dict(params, encoder=lora_lib.overlay(params['encoder'], converted))
  return model, params


def is_trainable(path: tuple[str, ...]) -> bool:
  """LoRA leaves of the encoder and everything outside it (fusion, projection, heads)."""
  return path[0] != 'encoder' or lora_lib.is_lora_path(path)
