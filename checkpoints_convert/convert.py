"""Reads official BEATs / AudioMAE PyTorch files and turns them into Flax parameter trees.

Every key of the official state dict is either consumed by a rule of `tables.py`, handled
specially (weight-norm folding, the shared relative-position table) or deliberately dropped;
anything else, and any missing or mis-shaped tensor, is a `ConversionError` naming the file.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import re
import zipfile
from typing import Any

import jax
import numpy as np
from flax import traverse_util

from asd_jax.encoders.config import AudioMAEConfig, BeatsConfig
from asd_jax.encoders.encoder import Encoder
from checkpoints_convert import tables


class ConversionError(Exception):
  """A checkpoint that cannot be converted; the message is one line naming the file."""


@dataclasses.dataclass
class Converted:
  params: dict
  config: BeatsConfig | AudioMAEConfig
  kind: str  # 'pretrained' or 'fine-tuned'
  dropped: list[str]

  @property
  def num_params(self) -> int:
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(self.params)))


def read_torch_file(path: str) -> Any:
  """torch.load with weights_only=True; argparse.Namespace (AudioMAE's `args`) is the one
  class allowed beyond plain tensors and containers."""
  if not os.path.isfile(path):
    raise ConversionError(f'{path}: no such file')
  try:
    import torch
  except ImportError as e:
    raise ConversionError(f'{path}: reading PyTorch files needs torch; install it with '
                          "pip install 'asd-jax[torch]'") from e
  if os.path.getsize(path) == 0:
    raise ConversionError(f'{path}: empty file, not a PyTorch checkpoint')
  if not zipfile.is_zipfile(path):
    with open(path, 'rb') as f:
      head = f.read(4)
    if head == b'PK\x03\x04':  # a zip archive whose central directory (at the end) is gone
      raise ConversionError(f'{path}: truncated or corrupt checkpoint (incomplete zip archive)')
    if head[:1] != b'\x80':  # neither a zip archive nor a legacy pickle
      raise ConversionError(f'{path}: not a PyTorch checkpoint (neither a zip archive nor a '
                            'pickle)')
  try:
    with torch.serialization.safe_globals([argparse.Namespace]):
      return torch.load(path, map_location='cpu', weights_only=True)
  except pickle.UnpicklingError as e:
    reason = str(e).strip().splitlines()[0] if str(e).strip() else 'unpickling failed'
    raise ConversionError(f'{path}: refused to unpickle ({reason[:160]})') from e
  except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
    raise ConversionError(f'{path}: truncated or corrupt checkpoint '
                          f'({str(e).splitlines()[0][:160] if str(e) else type(e).__name__})') from e


def _to_numpy(state_dict: dict, source: str) -> dict[str, np.ndarray]:
  out = {}
  for key, value in state_dict.items():
    if hasattr(value, 'detach'):
      out[key] = value.detach().cpu().float().numpy()
    elif isinstance(value, np.ndarray):  # official layout held as NumPy (benchmarks, tests)
      out[key] = value.astype(np.float32)
    else:
      raise ConversionError(f'{source}: state dict entry {key!r} is not a tensor')
  return out


def _apply_rules(state: dict[str, np.ndarray], rules: list[tables.Rule], config, num_layers: int,
                 source: str, consumed: set[str]) -> dict[str, np.ndarray]:
  """Runs every rule over `state`; per-layer outputs are stacked on a leading layer axis."""
  flat: dict[str, np.ndarray] = {}
  stacks: dict[str, dict[int, np.ndarray]] = {}
  for rule in rules:
    regex = rule.regex()
    for key in state:
      match = regex.match(key)
      if not match:
        continue
      consumed.add(key)
      arrays = rule.transform(state[key], config)
      for target, array in zip(rule.targets, arrays):
        if rule.per_layer:
          layer = int(match.group(1))
          if layer >= num_layers:
            raise ConversionError(f'{source}: {key} names layer {layer} but the config has '
                                  f'{num_layers} layers')
          stacks.setdefault(target, {})[layer] = (key, array)
        else:
          flat[target] = array
  for target, layers in stacks.items():
    missing = sorted(set(range(num_layers)) - set(layers))
    if missing:
      raise ConversionError(f'{source}: layer(s) {missing} lack the tensor for {target}')
    first_key, first = layers[0]
    for key, array in layers.values():
      if array.shape != first.shape:
        raise ConversionError(f'{source}: {key} has shape {array.shape} after conversion, '
                              f'but {first_key} has {first.shape}')
    flat[target] = np.stack([layers[i][1] for i in range(num_layers)])
  return flat


def _check_against_model(flat: dict[str, np.ndarray], config, source: str, ignore=()) -> dict:
  """Every Flax parameter present with the expected shape, nothing extra."""
  encoder = Encoder(config, None)
  expected = jax.eval_shape(lambda: encoder.init_params(jax.random.PRNGKey(0), 16000 * 2))
  expected = {'/'.join(k): v.shape for k, v in traverse_util.flatten_dict(expected).items()}
  for path in sorted(expected):
    if path not in flat:
      raise ConversionError(f'{source}: missing the tensor for {path}')
    if tuple(flat[path].shape) != tuple(expected[path]):
      raise ConversionError(f'{source}: {path} has shape {tuple(flat[path].shape)}, expected '
                            f'{tuple(expected[path])} for this config')
  extra = sorted(set(flat) - set(expected) - set(ignore))
  if extra:
    raise ConversionError(f'{source}: tensors {extra} do not fit this architecture')
  return traverse_util.unflatten_dict({tuple(k.split('/')): v.astype(np.float32)
                                       for k, v in flat.items() if k in expected})


def _first_present(state, names, source, what):
  for name in names:
    if name in state:
      return name
  raise ConversionError(f'{source}: missing {what} ({" or ".join(names)})')


def convert_beats(checkpoint: Any, source: str) -> Converted:
  """Official BEATs file ({'cfg', 'model'[, 'label_dict']}) -> Flax params + config."""
  if not isinstance(checkpoint, dict) or 'model' not in checkpoint:
    raise ConversionError(f'{source}: not a BEATs checkpoint (expected a dict with cfg and model)')
  if 'cfg' not in checkpoint:
    hint = ' (looks like AudioMAE: use checkpoints_convert audiomae)' if any(
        k.startswith('blocks.') for k in checkpoint['model']) else ''
    raise ConversionError(f'{source}: not a BEATs checkpoint, it has no cfg{hint}')
  try:
    config = BeatsConfig.from_official_cfg(dict(checkpoint['cfg']))
  except (TypeError, ValueError) as e:
    raise ConversionError(f'{source}: unusable BEATs cfg ({e})') from e
  state = _to_numpy(checkpoint['model'], source)
  consumed: set[str] = set()
  flat = _apply_rules(state, tables.BEATS_RULES, config, config.encoder_layers, source, consumed)
  g_key = _first_present(state, tables.POS_CONV_G, source, 'the positional conv weight_g')
  v_key = _first_present(state, tables.POS_CONV_V, source, 'the positional conv weight_v')
  g, v = state[g_key], state[v_key]
  weight = g * v / np.linalg.norm(v, axis=(0, 1), keepdims=True)
  flat[tables.POS_CONV_KERNEL] = tables.conv1d(weight, config)[0]
  consumed.update({g_key, v_key})
  if config.relative_position_embedding:
    regex = tables.Rule(tables.SHARED_REL_BIAS, (), tables.same).regex()
    shared = {int(m.group(1)): k for k in state if (m := regex.match(k))}
    if 0 not in shared:
      raise ConversionError(f'{source}: missing {tables.SHARED_REL_BIAS.format(i=0)}')
    table = state[shared[0]]
    for layer, key in shared.items():
      if not np.array_equal(state[key], table):
        raise ConversionError(f'{source}: {key} differs from layer 0; BEATs shares one relative '
                              'position table across layers')
    flat['relative_attention_bias'] = table
    consumed.update(shared.values())
  unknown = sorted(set(state) - consumed)
  if unknown:
    raise ConversionError(f'{source}: unexpected keys for BEATs: {unknown[:5]}'
                          f'{" ..." if len(unknown) > 5 else ""}')
  params = _check_against_model(flat, config, source)
  kind = 'fine-tuned' if config.finetuned_model else 'pretrained'
  return Converted(params, config, kind, dropped=[])


# Head counts of the released AudioMAE encoders (the file records the model name only).
AUDIOMAE_HEADS_BY_WIDTH = {384: 6, 768: 12, 1024: 16, 1280: 16}


def audiomae_config_from_state(state: dict[str, np.ndarray], num_heads: int | None,
                               source: str) -> AudioMAEConfig:
  """Sizes from tensor shapes; the head count (not recorded) from `num_heads` or the width."""
  for key in ('pos_embed', 'patch_embed.proj.weight', 'cls_token'):
    if key not in state:
      raise ConversionError(f'{source}: missing {key}; not an AudioMAE encoder state dict')
  width = state['pos_embed'].shape[-1]
  patch = state['patch_embed.proj.weight'].shape[-1]
  num_mel_bins = 128
  num_patches = state['pos_embed'].shape[1] - 1
  freq_patches = num_mel_bins // patch
  if num_patches % freq_patches:
    raise ConversionError(f'{source}: pos_embed has {num_patches} patches, not a multiple of '
                          f'{freq_patches} frequency patches')
  depth = 1 + max((int(m.group(1)) for k in state if (m := re.match(r'^blocks\.(\d+)\.', k))),
                  default=-1)
  if depth == 0:
    raise ConversionError(f'{source}: no encoder blocks found')
  if 'blocks.0.mlp.fc1.weight' not in state:
    raise ConversionError(f'{source}: missing blocks.0.mlp.fc1.weight')
  heads = num_heads or AUDIOMAE_HEADS_BY_WIDTH.get(width)
  if heads is None:
    raise ConversionError(f'{source}: width {width} matches no released AudioMAE; pass '
                          '--num_heads (the file does not record it)')
  finetuned = 'head.weight' in state
  config = AudioMAEConfig(
      embed_dim=width, depth=depth, num_heads=heads,
      mlp_dim=state['blocks.0.mlp.fc1.weight'].shape[0], patch_size=patch,
      num_frames=(num_patches // freq_patches) * patch, num_mel_bins=num_mel_bins,
      finetuned=finetuned, num_classes=state['head.weight'].shape[0] if finetuned else 0)
  try:
    config.validate()
  except ValueError as e:
    raise ConversionError(f'{source}: {e}') from e
  return config


def convert_audiomae(checkpoint: Any, source: str, num_heads: int | None = None) -> Converted:
  """AudioMAE pretrained.pth / finetuned.pth ({'model', ...}) -> Flax params + config."""
  if isinstance(checkpoint, dict) and 'cfg' in checkpoint:
    raise ConversionError(f'{source}: this is a BEATs checkpoint (it has cfg); use '
                          'checkpoints_convert beats')
  if not isinstance(checkpoint, dict):
    raise ConversionError(f'{source}: not an AudioMAE checkpoint (expected a dict)')
  state = checkpoint.get('model', checkpoint)
  if not isinstance(state, dict):
    raise ConversionError(f'{source}: not an AudioMAE checkpoint (model is not a state dict)')
  state = _to_numpy(state, source)
  config = audiomae_config_from_state(state, num_heads, source)
  consumed: set[str] = set()
  flat = _apply_rules(state, tables.AUDIOMAE_RULES, config, config.depth, source, consumed)
  dropped = sorted(k for k in state if tables.AUDIOMAE_DROPPED.match(k))
  unknown = sorted(set(state) - consumed - set(dropped))
  if unknown:
    raise ConversionError(f'{source}: unexpected keys for AudioMAE: {unknown[:5]}'
                          f'{" ..." if len(unknown) > 5 else ""}')
  params = _check_against_model(flat, config, source)
  return Converted(params, config, 'fine-tuned' if config.finetuned else 'pretrained', dropped)
