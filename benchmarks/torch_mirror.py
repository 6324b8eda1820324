"""PyTorch mirror of the two encoders, loading official state dicts as they are.

The PyTorch side of `asd-jax bench` when no checkout of the official code is given. It follows
the official modules' computations and key names (microsoft/unilm beats/, timm's ViT as used by
AudioMAE), and its outputs are tested against ../shared/fixtures like the Flax port
(tests/test_bench.py). Written for this project; no official code is copied.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from asd_jax.audio import fbank as fbank_lib


# benchmarks/profile_ops.py turns these on to name the op kinds; off, the modules are exactly
# what `asd-jax bench` times (torch.compile sees no profiler ranges).
PROFILE_RANGES = False


def profile_range(name: str):
  return torch.profiler.record_function(name) if PROFILE_RANGES else contextlib.nullcontext()


def kaldi_fbank(wave: torch.Tensor, window: str) -> torch.Tensor:
  """[B, S] (already scaled) -> [B, T, 128] log-mel, same recipe as asd_jax.audio.fbank."""
  frames = wave.unfold(-1, fbank_lib.FRAME_LENGTH, fbank_lib.FRAME_SHIFT)
  frames = frames - frames.mean(-1, keepdim=True)
  previous = torch.cat([frames[..., :1], frames[..., :-1]], -1)
  frames = (frames - fbank_lib.PREEMPHASIS * previous) * torch.from_numpy(
      fbank_lib.frame_window(window)).to(wave.device)
  power = torch.fft.rfft(frames, n=fbank_lib.FFT_SIZE).abs().pow(2)
  mel = power @ torch.from_numpy(fbank_lib.mel_filterbank(128)).to(wave.device)
  return torch.clamp(mel, min=fbank_lib.LOG_FLOOR).log()


def encoder_fbank(wave: torch.Tensor, preset: fbank_lib.FbankPreset) -> torch.Tensor:
  if preset.remove_clip_mean:
    wave = wave - wave.mean(-1, keepdim=True)
  fbank = kaldi_fbank(wave * preset.input_scale, preset.window)
  if preset.num_frames is not None:
    missing = preset.num_frames - fbank.shape[1]
    if missing > 0:
      fbank = F.pad(fbank, (0, 0, 0, missing))
    fbank = fbank[:, :preset.num_frames]
  return (fbank - preset.norm_mean) / (2 * preset.norm_std)


class WeightNormConv1d(nn.Module):
  """Grouped Conv1d with weight = g·v/‖v‖ (norm over dims 0, 1), keys weight_g / weight_v."""

  def __init__(self, width, kernel, groups):
    super().__init__()
    self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
    self.weight_v = nn.Parameter(torch.randn(width, width // groups, kernel) * 0.02)
    self.bias = nn.Parameter(torch.zeros(width))
    self.groups, self.pad = groups, kernel // 2

  def forward(self, x):
    weight = self.weight_g * self.weight_v / self.weight_v.norm(dim=(0, 1), keepdim=True)
    return F.conv1d(x, weight, self.bias, padding=self.pad, groups=self.groups)


@torch.compiler.disable  # a NumPy table lookup; torch.compile need not trace it
def relative_buckets(length, num_buckets, max_distance):
  from asd_jax.encoders.beats import relative_position_buckets
  return torch.from_numpy(relative_position_buckets(length, num_buckets, max_distance)).long()


class BeatsAttention(nn.Module):
  def __init__(self, cfg):
    super().__init__()
    d, self.heads = cfg['encoder_embed_dim'], cfg['encoder_attention_heads']
    for name in ('k_proj', 'v_proj', 'q_proj', 'out_proj'):
      setattr(self, name, nn.Linear(d, d))
    self.grep_linear = nn.Linear(d // self.heads, 8)
    self.grep_a = nn.Parameter(torch.ones(1, self.heads, 1, 1))
    self.relative_attention_bias = nn.Embedding(cfg['num_buckets'], self.heads)

  def forward(self, x, pos_bias):  # x [B, N, D], pos_bias [H, N, N]
    b, n, d = x.shape
    split = lambda t: t.view(b, n, self.heads, -1).transpose(1, 2)  # [B, H, N, d]
    q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
    with profile_range('relative_position_bias'):
      g = torch.sigmoid(self.grep_linear(q).view(b, self.heads, n, 2, 4).sum(-1))
      gate = g[..., :1] * (g[..., 1:] * self.grep_a - 1.0) + 2.0  # [B, H, N, 1]
      mask = gate * pos_bias[None]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return self.out_proj(out.transpose(1, 2).reshape(b, n, d))


class BeatsLayer(nn.Module):
  def __init__(self, cfg):
    super().__init__()
    d = cfg['encoder_embed_dim']
    self.self_attn = BeatsAttention(cfg)
    self.self_attn_layer_norm = nn.LayerNorm(d)
    self.fc1 = nn.Linear(d, cfg['encoder_ffn_embed_dim'])
    self.fc2 = nn.Linear(cfg['encoder_ffn_embed_dim'], d)
    self.final_layer_norm = nn.LayerNorm(d)
    self.alpha = (2.0 * cfg['encoder_layers'])**0.25 if cfg['deep_norm'] else 1.0

  def forward(self, x, pos_bias):
    x = self.self_attn_layer_norm(x * self.alpha + self.self_attn(x, pos_bias))
    return self.final_layer_norm(x * self.alpha + self.fc2(F.gelu(self.fc1(x))))


class BeatsEncoder(nn.Module):
  def __init__(self, cfg):
    super().__init__()
    d = cfg['encoder_embed_dim']
    self.pos_conv = nn.Sequential(WeightNormConv1d(d, cfg['conv_pos'], cfg['conv_pos_groups']))
    self.layers = nn.ModuleList(BeatsLayer(cfg) for _ in range(cfg['encoder_layers']))
    self.layer_norm = nn.LayerNorm(d)
    self.cfg = cfg

  def forward(self, x):
    with profile_range('pos_conv'):
      conv = self.pos_conv(x.transpose(1, 2))
      if self.cfg['conv_pos'] % 2 == 0:
        conv = conv[..., :-1]
    x = self.layer_norm(x + F.gelu(conv).transpose(1, 2))
    with profile_range('relative_position_bias'):
      table = self.layers[0].self_attn.relative_attention_bias.weight
      buckets = relative_buckets(x.shape[1], self.cfg['num_buckets'],
                                 self.cfg['max_distance']).to(x.device)
      pos_bias = table[buckets].permute(2, 0, 1)
    for layer in self.layers:
      x = layer(x, pos_bias)
    return x


class BEATsTorch(nn.Module):
  """waveform [B, S] -> tokens [B, N, D]; state dict keys as the official BEATs."""

  def __init__(self, cfg):
    super().__init__()
    e, d, p = cfg['embed_dim'], cfg['encoder_embed_dim'], cfg['input_patch_size']
    self.patch_embedding = nn.Conv2d(1, e, p, p, bias=cfg.get('conv_bias', False))
    self.layer_norm = nn.LayerNorm(e)
    self.post_extract_proj = nn.Linear(e, d) if e != d else None
    self.encoder = BeatsEncoder(cfg)

  def forward(self, wave):
    with profile_range('front_end'):
      x = self.patch_embedding(encoder_fbank(wave, fbank_lib.BEATS).unsqueeze(1))
    x = self.layer_norm(x.flatten(2).transpose(1, 2))
    if self.post_extract_proj is not None:
      x = self.post_extract_proj(x)
    return self.encoder(x)


class Block(nn.Module):
  def __init__(self, d, heads, mlp):
    super().__init__()
    self.norm1, self.norm2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
    self.attn = nn.Module()
    self.attn.qkv, self.attn.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
    self.mlp = nn.Module()
    self.mlp.fc1, self.mlp.fc2 = nn.Linear(d, mlp), nn.Linear(mlp, d)
    self.heads = heads

  def forward(self, x):
    b, n, d = x.shape
    q, k, v = self.attn.qkv(self.norm1(x)).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
    x = x + self.attn.proj(out)
    return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class AudioMAETorch(nn.Module):
  """waveform [B, S] -> tokens [B, 1 + patches, D] after the final norm (pretrained layout)."""

  def __init__(self, width=768, depth=12, heads=12, mlp=3072, num_frames=1024):
    super().__init__()
    self.patch_embed = nn.Module()
    self.patch_embed.proj = nn.Conv2d(1, width, 16, 16)
    patches = (num_frames // 16) * 8
    self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
    self.pos_embed = nn.Parameter(torch.zeros(1, patches + 1, width))
    self.blocks = nn.ModuleList(Block(width, heads, mlp) for _ in range(depth))
    self.norm = nn.LayerNorm(width, eps=1e-6)
    self.preset = fbank_lib.FbankPreset(**{**fbank_lib.AUDIOMAE.__dict__,
                                           'num_frames': num_frames})

  def forward(self, wave):
    with profile_range('front_end'):
      x = self.patch_embed.proj(encoder_fbank(wave, self.preset).unsqueeze(1))
    x = x.flatten(2).transpose(1, 2) + self.pos_embed[:, 1:]
    cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], 1)
    for block in self.blocks:
      x = block(x)
    return self.norm(x)


class LoRALinear(nn.Module):
  """Frozen Linear + (alpha/r)·B·A on dropout(x), B zero at start (mirror of asd_jax LoRA)."""

  def __init__(self, base: nn.Linear, rank=8, alpha=16.0, dropout=0.1):
    super().__init__()
    self.base = base
    self.a = nn.Parameter(torch.empty(base.in_features, rank).uniform_(
        -1 / math.sqrt(base.in_features), 1 / math.sqrt(base.in_features)))
    self.b = nn.Parameter(torch.zeros(rank, base.out_features))
    self.drop, self.scale = nn.Dropout(dropout), alpha / rank

  def forward(self, x):
    return self.base(x) + self.scale * (self.drop(x) @ self.a @ self.b)


class TwoChannelTorch(nn.Module):
  """Mirror of asd_jax's ASDModel training path: shared LoRA BEATs on 2B rows, gated fusion,
  mean pooling, projection, ArcFace cosine heads."""

  def __init__(self, encoder: BEATsTorch, num_attributes: int, embed_dim=256):
    super().__init__()
    for p in encoder.parameters():
      p.requires_grad_(False)
    for layer in encoder.encoder.layers:
      layer.self_attn.q_proj = LoRALinear(layer.self_attn.q_proj)
      layer.self_attn.v_proj = LoRALinear(layer.self_attn.v_proj)
    self.encoder = encoder
    d = encoder.encoder.cfg['encoder_embed_dim']
    self.gate = nn.Linear(2 * d, 1)
    nn.init.constant_(self.gate.bias, 1.0)
    self.projection = nn.Linear(d, embed_dim)
    self.attribute_weight = nn.Parameter(torch.randn(embed_dim, num_attributes) * 0.05)
    self.domain_weight = nn.Parameter(torch.randn(embed_dim, 2) * 0.05)

  def loss(self, wave, attribute, domain, scale=30.0, margin=0.5):
    b = wave.shape[0]
    tokens = self.encoder(wave.reshape(2 * b, -1)).view(b, 2, -1, self.gate.in_features // 2)
    with profile_range('heads'):
      return self._heads_loss(tokens, attribute, domain, scale, margin)

  def _heads_loss(self, tokens, attribute, domain, scale, margin):
    near, far = tokens[:, 0], tokens[:, 1]
    alpha = torch.sigmoid(self.gate(torch.cat([near, far], -1)))
    emb = self.projection((alpha * near + (1 - alpha) * far).mean(1))
    total = 0.0
    for weight, labels in ((self.attribute_weight, attribute), (self.domain_weight, domain)):
      cos = F.normalize(emb, dim=-1) @ F.normalize(weight, dim=0)
      theta = torch.acos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
      target = F.one_hot(labels, cos.shape[-1]).bool()
      total = total + F.cross_entropy(scale * torch.where(target, torch.cos(theta + margin), cos),
                                      labels)
    return total


def load_official(model: nn.Module, state: dict) -> nn.Module:
  """Loads an official state dict (numpy or torch values); decoder keys etc. are ignored."""
  state = {k: torch.as_tensor(np.asarray(v)) for k, v in state.items()}
  own = model.state_dict()
  missing = [k for k in own if k not in state]
  if missing:
    raise KeyError(f'official state dict lacks {missing[:3]}')
  model.load_state_dict({k: state[k] for k in own})
  return model.eval()
