"""Architecture configs of the ported encoders, built from what a checkpoint says about itself.

`BeatsConfig.from_official_cfg` reads the `cfg` dict stored in every BEATs file (the class
defaults of the official BEATsConfig are NOT the released checkpoints' values). AudioMAE files
carry no architecture record, so `AudioMAEConfig` is inferred from tensor shapes plus a head count.
Both round-trip through JSON so a converted checkpoint folder describes itself.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any


@dataclasses.dataclass(frozen=True)
class LoRAConfig:
  """Low-rank adapters on frozen linear layers (report §3.3); rank 0 disables them."""
  rank: int = 0
  alpha: float = 16.0
  dropout: float = 0.1
  targets: tuple[str, ...] = ('q', 'v')  # any of q, k, v, out, fc1, fc2

  def __post_init__(self):
    if self.rank < 0:
      raise ValueError(f'LoRA rank must be >= 0, got {self.rank}')
    unknown = set(self.targets) - set(LORA_TARGETS)
    if unknown:
      raise ValueError(f'unknown LoRA targets {sorted(unknown)}; choose from {LORA_TARGETS}')

  @property
  def scale(self) -> float:
    return self.alpha / self.rank if self.rank else 0.0


LORA_TARGETS = ('q', 'k', 'v', 'out', 'fc1', 'fc2')


@dataclasses.dataclass(frozen=True)
class BeatsConfig:
  """BEATs sizes and switches, named as in the official cfg dict."""
  input_patch_size: int = 16
  embed_dim: int = 512
  conv_bias: bool = False
  encoder_layers: int = 12
  encoder_embed_dim: int = 768
  encoder_ffn_embed_dim: int = 3072
  encoder_attention_heads: int = 12
  activation_fn: str = 'gelu'
  layer_norm_first: bool = False
  deep_norm: bool = True
  conv_pos: int = 128
  conv_pos_groups: int = 16
  relative_position_embedding: bool = True
  num_buckets: int = 320
  max_distance: int = 800
  gru_rel_pos: bool = True
  finetuned_model: bool = False
  predictor_class: int = 527
  dropout: float = 0.1  # residual dropout, used only in training
  attention_dropout: float = 0.1
  num_mel_bins: int = 128

  kind = 'beats'
  prefix_tokens = 0  # tokens before the patch tokens

  @classmethod
  def from_official_cfg(cls, cfg: dict[str, Any]) -> 'BeatsConfig':
    """Builds the config from a checkpoint's `cfg`; keys we do not model are ignored."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in cfg.items() if k in names}
    config = cls(**values)
    config.validate()
    return config

  def validate(self):
    if self.activation_fn != 'gelu':
      raise ValueError(f'activation_fn={self.activation_fn!r} is not supported (only gelu)')
    if self.layer_norm_first:
      raise ValueError('layer_norm_first=True BEATs variants are not supported '
                       '(released checkpoints are post-LN with deep_norm)')
    if self.encoder_embed_dim % self.encoder_attention_heads:
      raise ValueError('encoder_embed_dim must be divisible by encoder_attention_heads')
    if self.num_mel_bins % self.input_patch_size:
      raise ValueError('num_mel_bins must be a multiple of input_patch_size')

  @property
  def patch_size(self) -> int:
    return self.input_patch_size

  @property
  def deep_norm_alpha(self) -> float:
    return (2.0 * self.encoder_layers)**0.25 if self.deep_norm else 1.0

  @property
  def width(self) -> int:
    return self.encoder_embed_dim


@dataclasses.dataclass(frozen=True)
class AudioMAEConfig:
  """timm ViT encoder of AudioMAE: sizes inferred from a checkpoint's tensors."""
  embed_dim: int = 768
  depth: int = 12
  num_heads: int = 12
  mlp_dim: int = 3072
  patch_size: int = 16
  num_frames: int = 1024  # input length in fbank frames (pad/truncate target)
  num_mel_bins: int = 128
  finetuned: bool = False  # fine-tuned files end in fc_norm + head instead of norm
  num_classes: int = 0  # head size of fine-tuned files
  layer_norm_eps: float = 1e-6
  dropout: float = 0.0  # timm's AudioMAE encoder is trained without dropout

  kind = 'audiomae'
  prefix_tokens = 1  # the cls token comes first

  def validate(self):
    if self.embed_dim % self.num_heads:
      raise ValueError(f'embed_dim {self.embed_dim} is not divisible by num_heads '
                       f'{self.num_heads}')
    if self.num_frames % self.patch_size or self.num_mel_bins % self.patch_size:
      raise ValueError('fbank frames and mel bins must be multiples of the patch size')

  @property
  def num_patches(self) -> int:
    return (self.num_frames // self.patch_size) * (self.num_mel_bins // self.patch_size)

  @property
  def width(self) -> int:
    return self.embed_dim


EncoderConfig = BeatsConfig | AudioMAEConfig
_KINDS = {'beats': BeatsConfig, 'audiomae': AudioMAEConfig}


def config_to_json(config: EncoderConfig) -> str:
  return json.dumps({'kind': config.kind, **dataclasses.asdict(config)}, indent=2)


def config_from_json(text: str) -> EncoderConfig:
  values = json.loads(text)
  kind = values.pop('kind', None)
  if kind not in _KINDS:
    raise ValueError(f'unknown encoder kind {kind!r}; expected one of {sorted(_KINDS)}')
  config = _KINDS[kind](**values)
  config.validate()
  return config
