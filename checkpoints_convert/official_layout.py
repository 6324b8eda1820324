"""Random checkpoints in the official file layouts, for tests and benchmarks.

They have the released models' key names and shapes (nothing here is real weights), so the
converter, the parity of shapes and the throughput benchmark can run without downloads.
"""
from __future__ import annotations

import argparse

import numpy as np

# The released BEATs checkpoints' cfg (iter3+, AS2M): see DESIGN §2.
BEATS_BASE_CFG = dict(
    input_patch_size=16, embed_dim=512, conv_bias=False, encoder_layers=12,
    encoder_embed_dim=768, encoder_ffn_embed_dim=3072, encoder_attention_heads=12,
    activation_fn='gelu', layer_norm_first=False, deep_norm=True, conv_pos=128,
    conv_pos_groups=16, relative_position_embedding=True, num_buckets=320, max_distance=800,
    gru_rel_pos=True, dropout=0.1, attention_dropout=0.1, activation_dropout=0.0,
    encoder_layerdrop=0.05, dropout_input=0.1, layer_wise_gradient_decay_ratio=0.6,
    finetuned_model=False)


def _linear(sd, rng, name, out_dim, in_dim, bias=True):
  sd[f'{name}.weight'] = rng.normal(0, 0.02, (out_dim, in_dim))
  if bias:
    sd[f'{name}.bias'] = rng.normal(0, 0.02, (out_dim,))


def _norm(sd, rng, name, dim):
  sd[f'{name}.weight'] = 1 + rng.normal(0, 0.02, (dim,))
  sd[f'{name}.bias'] = rng.normal(0, 0.02, (dim,))


def beats_state_dict(cfg: dict, seed: int = 0, predictor_classes: int = 0) -> dict:
  """BEATs state dict ({key: float32 array}) for `cfg`, keys as in microsoft/unilm."""
  rng = np.random.default_rng(seed)
  sd: dict[str, np.ndarray] = {}
  e, d, p = cfg['embed_dim'], cfg['encoder_embed_dim'], cfg['input_patch_size']
  heads, k, groups = cfg['encoder_attention_heads'], cfg['conv_pos'], cfg['conv_pos_groups']
  if e != d:
    _linear(sd, rng, 'post_extract_proj', d, e)
  sd['patch_embedding.weight'] = rng.normal(0, 0.02, (e, 1, p, p))
  sd['encoder.pos_conv.0.bias'] = rng.normal(0, 0.02, (d,))
  sd['encoder.pos_conv.0.weight_g'] = 1 + rng.normal(0, 0.1, (1, 1, k))
  sd['encoder.pos_conv.0.weight_v'] = rng.normal(0, 0.02, (d, d // groups, k))
  table = rng.normal(0, 0.02, (cfg['num_buckets'], heads))
  for i in range(cfg['encoder_layers']):
    a = f'encoder.layers.{i}.self_attn'
    sd[f'{a}.grep_a'] = 1 + rng.normal(0, 0.1, (1, heads, 1, 1))
    sd[f'{a}.relative_attention_bias.weight'] = table
    for name in ('k_proj', 'v_proj', 'q_proj', 'out_proj'):
      _linear(sd, rng, f'{a}.{name}', d, d)
    _linear(sd, rng, f'{a}.grep_linear', 8, d // heads)
    _norm(sd, rng, f'encoder.layers.{i}.self_attn_layer_norm', d)
    _linear(sd, rng, f'encoder.layers.{i}.fc1', cfg['encoder_ffn_embed_dim'], d)
    _linear(sd, rng, f'encoder.layers.{i}.fc2', d, cfg['encoder_ffn_embed_dim'])
    _norm(sd, rng, f'encoder.layers.{i}.final_layer_norm', d)
  _norm(sd, rng, 'encoder.layer_norm', d)
  _norm(sd, rng, 'layer_norm', e)
  if predictor_classes:
    _linear(sd, rng, 'predictor', predictor_classes, d)
  return {key: value.astype(np.float32) for key, value in sd.items()}


def audiomae_state_dict(width: int = 768, depth: int = 12, mlp_dim: int = 3072,
                        num_patches: int = 512, seed: int = 0, finetuned_classes: int = 0,
                        decoder_width: int = 512) -> dict:
  """AudioMAE encoder state dict (+ decoder keys and mask_token for pretrained files)."""
  rng = np.random.default_rng(seed)
  sd: dict[str, np.ndarray] = {
      'cls_token': rng.normal(0, 0.02, (1, 1, width)),
      'pos_embed': rng.normal(0, 0.1, (1, num_patches + 1, width)),
      'patch_embed.proj.weight': rng.normal(0, 0.02, (width, 1, 16, 16)),
      'patch_embed.proj.bias': rng.normal(0, 0.02, (width,)),
  }
  for i in range(depth):
    b = f'blocks.{i}'
    _norm(sd, rng, f'{b}.norm1', width)
    _linear(sd, rng, f'{b}.attn.qkv', 3 * width, width)
    _linear(sd, rng, f'{b}.attn.proj', width, width)
    _norm(sd, rng, f'{b}.norm2', width)
    _linear(sd, rng, f'{b}.mlp.fc1', mlp_dim, width)
    _linear(sd, rng, f'{b}.mlp.fc2', width, mlp_dim)
  if finetuned_classes:
    _norm(sd, rng, 'fc_norm', width)
    _linear(sd, rng, 'head', finetuned_classes, width)
  else:
    _norm(sd, rng, 'norm', width)
    sd['mask_token'] = rng.normal(0, 0.02, (1, 1, decoder_width))
    _linear(sd, rng, 'decoder_embed', decoder_width, width)
    sd['decoder_pos_embed'] = rng.normal(0, 0.1, (1, num_patches + 1, decoder_width))
    _norm(sd, rng, 'decoder_norm', decoder_width)
    _linear(sd, rng, 'decoder_pred', 256, decoder_width)
  return {key: value.astype(np.float32) for key, value in sd.items()}


def save_beats(path: str, cfg: dict, state: dict) -> None:
  """Writes {'cfg', 'model'} with torch.save, as the official BEATs files are laid out."""
  import torch
  torch.save({'cfg': dict(cfg), 'model': {k: torch.from_numpy(v) for k, v in state.items()}},
             path)


def save_audiomae(path: str, state: dict, model_name: str = 'mae_vit_base_patch16') -> None:
  """Writes AudioMAE's pretrained.pth layout: model, optimizer, epoch, scaler, args."""
  import torch
  torch.save({'model': {k: torch.from_numpy(v) for k, v in state.items()}, 'optimizer': {},
              'epoch': 0, 'scaler': {}, 'args': argparse.Namespace(model=model_name)}, path)
