"""Official PyTorch key -> Flax parameter path, one table per model: the port's documentation.

A rule matches an official key (``{i}`` stands for a layer index), names the Flax path(s) it
fills and how the tensor is transformed. Per-layer rules fill a layer-stacked leaf (the encoders
scan their layers), at index i. Keys in DROPPED are read and deliberately discarded.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Rule:
  pattern: str  # official key, '{i}' = layer index
  targets: tuple[str, ...]  # Flax paths, '/'-separated; layer rules fill index i of each
  transform: Callable[..., tuple[np.ndarray, ...]]  # (tensor, config) -> one array per target

  @property
  def per_layer(self) -> bool:
    return '{i}' in self.pattern

  def regex(self) -> re.Pattern:
    return re.compile('^' + re.escape(self.pattern).replace(r'\{i\}', r'(\d+)') + '$')


def same(t, _):
  return (t,)


def linear(t, _):
  """torch Linear weight [out, in] -> Flax kernel [in, out]."""
  return (t.T,)


def conv2d(t, _):
  """torch Conv2d weight [out, in, kh, kw] -> Flax kernel [kh, kw, in, out]."""
  return (np.transpose(t, (2, 3, 1, 0)),)


def conv1d(t, _):
  """torch Conv1d weight [out, in/groups, k] -> Flax kernel [k, in/groups, out]."""
  return (np.transpose(t, (2, 1, 0)),)


def per_head(t, _):
  """grep_a [1, H, 1, 1] -> [H]."""
  return (t.reshape(-1),)


def split_qkv_weight(t, _):
  """timm fused qkv weight [3D, D] -> q, k, v kernels [D, D]."""
  return tuple(w.T for w in np.split(t, 3, axis=0))


def split_qkv_bias(t, _):
  return tuple(np.split(t, 3, axis=0))


def _linear_rules(official: str, flax: str) -> list[Rule]:
  return [Rule(f'{official}.weight', (f'{flax}/kernel',), linear),
          Rule(f'{official}.bias', (f'{flax}/bias',), same)]


def _norm_rules(official: str, flax: str) -> list[Rule]:
  return [Rule(f'{official}.weight', (f'{flax}/scale',), same),
          Rule(f'{official}.bias', (f'{flax}/bias',), same)]


# Weight-normed positional convolution: weight = g · v / ‖v‖ (norm over dims 0, 1 per tap);
# older torch stores weight_g/weight_v, torch >= 2.1 parametrizations store original0/original1.
POS_CONV_G = ('encoder.pos_conv.0.weight_g', 'encoder.pos_conv.0.parametrizations.weight.original0')
POS_CONV_V = ('encoder.pos_conv.0.weight_v', 'encoder.pos_conv.0.parametrizations.weight.original1')
POS_CONV_KERNEL = 'pos_conv/conv/kernel'
SHARED_REL_BIAS = 'encoder.layers.{i}.self_attn.relative_attention_bias.weight'

BEATS_RULES: list[Rule] = [
    Rule('patch_embedding.weight', ('patch_embedding/kernel',), conv2d),
    Rule('patch_embedding.bias', ('patch_embedding/bias',), same),
    *_norm_rules('layer_norm', 'layer_norm'),
    *_linear_rules('post_extract_proj', 'post_extract_proj'),
    Rule('encoder.pos_conv.0.bias', ('pos_conv/conv/bias',), same),
    *_norm_rules('encoder.layer_norm', 'encoder_layer_norm'),
    *[r for name in ('q', 'k', 'v', 'out')
      for r in _linear_rules(f'encoder.layers.{{i}}.self_attn.{name}_proj', f'layers/{name}')],
    *_linear_rules('encoder.layers.{i}.self_attn.grep_linear', 'layers/grep_linear'),
    Rule('encoder.layers.{i}.self_attn.grep_a', ('layers/grep_a',), per_head),
    *_norm_rules('encoder.layers.{i}.self_attn_layer_norm', 'layers/self_attn_layer_norm'),
    *_linear_rules('encoder.layers.{i}.fc1', 'layers/fc1'),
    *_linear_rules('encoder.layers.{i}.fc2', 'layers/fc2'),
    *_norm_rules('encoder.layers.{i}.final_layer_norm', 'layers/final_layer_norm'),
    *_linear_rules('predictor', 'predictor'),
]
# Handled by the converter itself: the weight-norm pair folds into one kernel, and the relative
# position table, shared by every layer in the model, is stored under each layer's key.
BEATS_SPECIAL = (*POS_CONV_G, *POS_CONV_V, SHARED_REL_BIAS)

AUDIOMAE_RULES: list[Rule] = [
    Rule('cls_token', ('cls_token',), same),
    Rule('pos_embed', ('pos_embed',), same),
    Rule('patch_embed.proj.weight', ('patch_embed/kernel',), conv2d),
    Rule('patch_embed.proj.bias', ('patch_embed/bias',), same),
    *_norm_rules('blocks.{i}.norm1', 'blocks/norm1'),
    Rule('blocks.{i}.attn.qkv.weight', ('blocks/q/kernel', 'blocks/k/kernel', 'blocks/v/kernel'),
         split_qkv_weight),
    Rule('blocks.{i}.attn.qkv.bias', ('blocks/q/bias', 'blocks/k/bias', 'blocks/v/bias'),
         split_qkv_bias),
    *_linear_rules('blocks.{i}.attn.proj', 'blocks/out'),
    *_norm_rules('blocks.{i}.norm2', 'blocks/norm2'),
    *_linear_rules('blocks.{i}.mlp.fc1', 'blocks/fc1'),
    *_linear_rules('blocks.{i}.mlp.fc2', 'blocks/fc2'),
    *_norm_rules('norm', 'norm'),
    *_norm_rules('fc_norm', 'fc_norm'),
    *_linear_rules('head', 'head'),
]
# The MAE decoder and its mask token serve pre-training only.
AUDIOMAE_DROPPED = re.compile(r'^(mask_token|decoder_.*)$')
