"""Model heads, the multi-device step, and resumable training."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import traverse_util

from asd_jax.audio import fbank as fbank_lib
from asd_jax.data import synthetic
from asd_jax.encoders.beats import patch_level
from asd_jax.model import GatedFusion, arcface_logits, arcface_loss
from asd_jax.model import build
from asd_jax.model.asd_model import FBANK_BAND_BINS, MODULATION_EDGES_HZ, POOLINGS
from asd_jax.model.fusion import frequency_row_pooling
from asd_jax.train import step as step_lib
from configs import default
from tests.conftest import REPO


def tiny_config(**train):
  """Random-init tiny encoders (the shipped ones are tested in tests/test_run.py)."""
  config = default.get_config()
  config.beats.checkpoint = config.audiomae.checkpoint = ''
  config.data.clip_seconds = 1.0
  config.train.batch_size = 8
  config.model.embed_dim = 32
  config.train.steps = 150  # a training run (the tiny default itself does not train)
  for key, value in train.items():
    config.train[key] = value
  return config


def test_arcface_matches_hand_computation():
  cos = jnp.array([[0.8, 0.1, -0.3], [0.2, 0.5, 0.4]])
  labels = jnp.array([0, 2])
  s, m = 30.0, 0.5
  logits = np.asarray(arcface_logits(cos, labels, s, m))
  expected = s * np.array([[np.cos(np.arccos(0.8) + m), 0.1, -0.3],
                           [0.2, 0.5, np.cos(np.arccos(0.4) + m)]])
  np.testing.assert_allclose(logits, expected, rtol=1e-5)
  loss, acc = arcface_loss(cos, labels, s, m)
  ce = [np.log(np.exp(row).sum()) - row[y] for row, y in zip(expected, [0, 2])]
  np.testing.assert_allclose(float(loss), np.mean(ce), rtol=1e-5)
  assert float(acc) == 0.5  # row 0 argmax 0 (right), row 1 argmax 1 (wrong)


def test_masked_rows_do_not_count():
  cos = jax.random.uniform(jax.random.PRNGKey(0), (4, 5), minval=-1, maxval=1)
  mask = jnp.array([True, True, False, True])
  a, _ = arcface_loss(cos, jnp.array([1, 2, -1, 4]), 30.0, 0.5, mask)
  b, _ = arcface_loss(cos, jnp.array([1, 2, 3, 4]), 30.0, 0.5, mask)
  c, _ = arcface_loss(cos[jnp.array([0, 1, 3])], jnp.array([1, 2, 4]), 30.0, 0.5)
  np.testing.assert_allclose([float(a), float(b)], [float(c)] * 2, rtol=1e-6)
  empty, _ = arcface_loss(cos, jnp.full((4,), -1), 30.0, 0.5, jnp.zeros(4, bool))
  assert float(empty) == 0.0


def test_gate_starts_at_sigmoid_one_for_every_token():
  tokens = jax.random.normal(jax.random.PRNGKey(0), (2, 2, 5, 8))
  params = GatedFusion().init(jax.random.PRNGKey(1), tokens)['params']
  assert float(params['gate']['bias'][0]) == 1.0
  _, gate = GatedFusion().apply({'params': params}, tokens)
  np.testing.assert_allclose(np.asarray(gate), 1 / (1 + np.exp(-1.0)), rtol=1e-6)
  # With a trained W_g the gate is σ(W_g[h1; h2] + b_g) per token, and mixes h1 and h2.
  kernel = jax.random.normal(jax.random.PRNGKey(2), params['gate']['kernel'].shape)
  trained = {'gate': {'kernel': kernel, 'bias': params['gate']['bias']}}
  fused, gate = GatedFusion().apply({'params': trained}, tokens)
  logit = jnp.concatenate([tokens[:, 0], tokens[:, 1]], -1) @ kernel[:, 0] + 1.0
  np.testing.assert_allclose(np.asarray(gate), np.asarray(jax.nn.sigmoid(logit)), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(fused), np.asarray(gate[..., None] * tokens[:, 0] +
                                                           (1 - gate[..., None]) * tokens[:, 1]),
                             rtol=1e-5, atol=1e-6)


def test_frequency_row_pooling_matches_a_loop_over_bands():
  """Tokens are time-major after a cls token: band f's tokens sit at 1 + t·rows + f."""
  rows, frames, dim = 4, 5, 3
  x = np.random.default_rng(0).normal(size=(2, 1 + frames * rows, dim)).astype(np.float32)
  pooled = np.asarray(frequency_row_pooling(jnp.asarray(x), rows, leading=1))
  expected = np.concatenate([np.concatenate([x[b, 1 + f::rows].mean(0), x[b, 1 + f::rows].std(0)])
                             for b in range(2) for f in range(rows)]).reshape(2, -1)
  np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)


def one_pass_and_duplicated(config):
  """(model, params, wave [3, 2, S], outputs of one pass with left_duplicated=True, outputs on
  [near, near]) of a BEATs branch whose gate looks trained: a random W_g, so that fusing
  [near, far] and [near, near] really differ."""
  model, params = build.build_branch(config, 'beats', num_attributes=3)
  params['fusion']['gate']['kernel'] = jax.random.normal(
      jax.random.PRNGKey(3), params['fusion']['gate']['kernel'].shape)
  wave = 0.1 * jax.random.normal(jax.random.PRNGKey(4), (3, 2, 16000))
  both = model.apply({'params': params}, wave, left_duplicated=True)
  duplicated = model.apply({'params': params}, jnp.stack([wave[:, 0], wave[:, 0]], axis=1))
  return model, params, wave, both, duplicated


@pytest.mark.parametrize('pooling', POOLINGS)
def test_left_duplicated_embedding_from_one_pass_equals_duplicated_input(pooling):
  """The embed stage takes both channel modes from one encoder pass; the left-duplicated one
  must equal the model run on [near, near] (float32 tolerance: rtol 1e-5, atol 1e-5)."""
  config = tiny_config()
  config.model.pooling = pooling
  model, params, wave, both, duplicated = one_pass_and_duplicated(config)
  np.testing.assert_allclose(np.asarray(both['embedding_left_duplicated']),
                             np.asarray(duplicated['embedding']), rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(np.asarray(both['embedding']),
                                np.asarray(model.apply({'params': params}, wave)['embedding']))
  assert not np.allclose(np.asarray(both['embedding']), np.asarray(duplicated['embedding']),
                         atol=1e-3)


def test_patch_level_is_fused_with_the_tokens_gate_and_left_duplicated_from_one_pass():
  """model.patch_level (BEATs only): [B, rows·4] pooled levels; the left-duplicated one equals
  the model run on [near, near], the two-channel one is gated like the tokens (float32: 1e-5)."""
  config = tiny_config()
  config.model.patch_level = True
  model, params, wave, both, duplicated = one_pass_and_duplicated(config)
  assert both['patch_level'].shape == (3, 8 * 4)
  np.testing.assert_allclose(np.asarray(both['patch_level_left_duplicated']),
                             np.asarray(duplicated['patch_level']), rtol=1e-5, atol=1e-5)
  features = fbank_lib.encoder_fbank(wave.reshape(6, -1), model.preset, model.num_mel_bins)
  _, patches = model.encoder.apply({'params': params['encoder']}, features,
                                   patch_embeddings=True)
  level = np.asarray(patch_level(patches)).reshape(3, 2, -1, 2)
  gate = np.asarray(both['gate'])[..., None]
  fused = gate * level[:, 0] + (1 - gate) * level[:, 1]
  expected = np.stack([np.concatenate([fused[b, f::8].mean(0), fused[b, f::8].std(0)])
                       for b in range(3) for f in range(8)]).reshape(3, -1)
  np.testing.assert_allclose(np.asarray(both['patch_level']), expected, rtol=1e-4, atol=1e-4)
  audiomae, _ = build.build_branch(config, 'audiomae', num_attributes=3)
  assert not audiomae.patch_level  # the kNN cosine branch has no patch-level bank


def test_patch_embedding_is_fused_pooled_per_row_and_projected():
  """model.patch_embedding (BEATs only): [B, E], the patch embeddings before the first
  LayerNorm gated like the tokens, pooled per frequency row (mean and std over time of each
  channel) and projected by `patch_projection`; the left-duplicated one equals the model run on
  [near, near] (float32: 1e-4)."""
  config = tiny_config()
  config.model.patch_level, config.model.patch_embedding = False, True
  model, params, wave, both, duplicated = one_pass_and_duplicated(config)
  assert 'patch_level' not in both and both['patch_embedding'].shape == (3, 32)
  np.testing.assert_allclose(np.asarray(both['patch_embedding_left_duplicated']),
                             np.asarray(duplicated['patch_embedding']), rtol=1e-4, atol=1e-4)
  features = fbank_lib.encoder_fbank(wave.reshape(6, -1), model.preset, model.num_mel_bins)
  _, patches = model.encoder.apply({'params': params['encoder']}, features,
                                   patch_embeddings=True)
  patches = np.asarray(patches).reshape(3, 2, -1, patches.shape[-1])
  gate = np.asarray(both['gate'])[..., None]
  fused = gate * patches[:, 0] + (1 - gate) * patches[:, 1]
  pooled = np.stack([np.concatenate([fused[b, f::8].mean(0), fused[b, f::8].std(0)])
                     for b in range(3) for f in range(8)]).reshape(3, -1)
  dense = params['patch_projection']
  expected = pooled @ np.asarray(dense['kernel']) + np.asarray(dense['bias'])
  np.testing.assert_allclose(np.asarray(both['patch_embedding']), expected, rtol=1e-4, atol=1e-4)


def test_fbank_level_is_the_gated_band_level_of_the_encoder_input():
  """model.fbank_level with fbank_level_span='crops' (BEATs only): [B, 2·bins/4], brute force in NumPy frame by frame and band
  by band, each frame and band mixed by the gate of the patch it falls in; frames past the last
  whole patch left out; the left-duplicated one equals the model run on [near, near] (float32:
  1e-4). It reads the fbank, not the encoder: other encoder weights leave it unchanged."""
  config = tiny_config()
  config.model.patch_level, config.model.fbank_level = False, True
  config.model.fbank_level_span = 'crops'
  model, params, wave, both, duplicated = one_pass_and_duplicated(config)
  bands = model.num_mel_bins // FBANK_BAND_BINS
  assert 'patch_level' not in both and both['fbank_level'].shape == (3, 2 * bands)
  np.testing.assert_allclose(np.asarray(both['fbank_level_left_duplicated']),
                             np.asarray(duplicated['fbank_level']), rtol=1e-4, atol=1e-4)
  features = np.asarray(fbank_lib.encoder_fbank(wave.reshape(6, -1), model.preset,
                                                model.num_mel_bins)).reshape(3, 2, -1, 128)
  gate = np.asarray(both['gate'])  # [B, N], n = t·8 + row over 16 x 16 patches
  steps = gate.shape[1] // 8
  assert features.shape[2] > steps * 16  # some frames do fall past the last patch
  expected = np.zeros((3, 2 * bands))
  for b in range(3):
    mixed = np.zeros((steps * 16, bands))
    for frame in range(steps * 16):
      for band in range(bands):
        g = gate[b, (frame // 16) * 8 + band * FBANK_BAND_BINS // 16]
        cell = features[b, :, frame, band * FBANK_BAND_BINS:(band + 1) * FBANK_BAND_BINS]
        mixed[frame, band] = g * cell[0].mean() + (1 - g) * cell[1].mean()
    expected[b] = np.concatenate([mixed.mean(0), mixed.std(0)])
  np.testing.assert_allclose(np.asarray(both['fbank_level']), expected, rtol=1e-4, atol=1e-4)
  params['encoder'] = jax.tree.map(lambda x: x * 1.5, params['encoder'])
  other = model.apply({'params': params}, wave, left_duplicated=True)
  np.testing.assert_allclose(np.asarray(other['fbank_level_left_duplicated']),
                             np.asarray(both['fbank_level_left_duplicated']), rtol=1e-6)
  audiomae, _ = build.build_branch(config, 'audiomae', num_attributes=3)
  assert not audiomae.fbank_level  # the kNN cosine branch has no fbank-level bank


def clips_of_2_3_seconds(tmp_path):
  """Seven built-in slider clips of 2.3 s: three 1-s crops each, frames past the last patch."""
  from asd_jax.data import layout
  root = str(tmp_path / 'data')
  synthetic.generate(root, synthetic.SynthConfig(machines=('slider',), clip_seconds=2.3,
                                                 source_train=2, target_train=1,
                                                 test_per_group=1))
  return layout.scan_dataset(root).clips


def test_whole_clip_fbank_level_reads_every_patch_of_the_clip(tmp_path):
  """model.fbank_level_span='clip': the embed stage reads the level from each whole clip (2.3 s,
  three 1-s crops), brute force in NumPy frame by frame and band by band: each band's channels
  mixed by its patch row's gate averaged over the crops' patches (two-channel) or the near
  channel alone (left-duplicated), frames past the clip's last whole patch left out (float32:
  1e-4). Every other output equals the crops' span; a clip shorter than a patch is a one-line
  error naming it."""
  import dataclasses

  import soundfile as sf

  from asd_jax.data import pipeline
  from asd_jax.inference import embed
  clips = clips_of_2_3_seconds(tmp_path)
  config = tiny_config()
  config.model.patch_level, config.model.fbank_level = False, True
  config.model.fbank_level_span = 'clip'
  model, params = build.build_branch(config, 'beats', num_attributes=3)
  params['fusion']['gate']['kernel'] = jax.random.normal(
      jax.random.PRNGKey(3), params['fusion']['gate']['kernel'].shape)
  audio = pipeline.AudioConfig(clip_seconds=1.0, eval_windows=3)
  out = embed.extract(model, params, clips, audio, batch_size=2, progress=False)
  crops_model = dataclasses.replace(model, fbank_level_span='crops')
  from_crops = embed.extract(crops_model, params, clips, audio, batch_size=2, progress=False)
  assert sorted(out) == sorted(from_crops)
  for key in out:
    if key[0] != 'fbank_level':
      np.testing.assert_array_equal(out[key], from_crops[key])
  bands = model.num_mel_bins // FBANK_BAND_BINS
  for i, clip in enumerate(clips[:3]):
    wave = pipeline.read_wave(clip.path, 'error')
    crops = np.stack([wave[:, o:o + 16000] for o in pipeline.window_offsets(wave.shape[1],
                                                                           16000, 3)])
    gate = np.asarray(model.apply({'params': params}, crops)['gate'])  # [3, N], n = t·8 + row
    gate_of_row = gate.reshape(3, -1, 8).mean(axis=(0, 1))
    features = np.asarray(fbank_lib.encoder_fbank(wave, model.preset, model.num_mel_bins))
    frames = features.shape[1] // 16 * 16
    assert features.shape[1] > frames  # some frames do fall past the last patch
    for mode, g_row in (('two_channel', gate_of_row), ('left_duplicated', np.ones(8))):
      mixed = np.zeros((frames, bands))
      for frame in range(frames):
        for band in range(bands):
          g = g_row[band * FBANK_BAND_BINS // 16]
          cell = features[:, frame, band * FBANK_BAND_BINS:(band + 1) * FBANK_BAND_BINS]
          mixed[frame, band] = g * cell[0].mean() + (1 - g) * cell[1].mean()
      np.testing.assert_allclose(out['fbank_level', mode][i],
                                 np.concatenate([mixed.mean(0), mixed.std(0)]),
                                 rtol=1e-4, atol=1e-4)
  short = str(tmp_path / 'short.wav')
  sf.write(short, np.zeros((2000, 2), np.float32), 16000)
  with pytest.raises(pipeline.DatasetError, match=f'^{short}: 2000 samples are shorter than one'):
    embed.clip_fbank_levels(model, [dataclasses.replace(clips[0], path=short)], 'error',
                            np.ones((1, 8), np.float32))


def test_logmel_level_is_the_reference_features_of_the_near_channel(tmp_path):
  """model.logmel_level (BEATs only): the embed stage adds a bank of each whole clip's near
  channel log-mel, per-bin mean and std over time, brute force from librosa's mel power spectrum
  of the file's first channel (n_fft 1024, hop 512, 128 bins, 10·log10; float32: 1e-4), the same
  in both channel modes; every other output is unchanged, and AudioMAE has no such bank."""
  import dataclasses

  import librosa
  import soundfile as sf

  from asd_jax.data import pipeline
  from asd_jax.inference import embed
  clips = clips_of_2_3_seconds(tmp_path)
  config = tiny_config()
  config.model.logmel_level = True
  model, params = build.build_branch(config, 'beats', num_attributes=3)
  assert model.logmel_level and 'logmel_level' in embed.outputs_of(model)
  audio = pipeline.AudioConfig(clip_seconds=1.0, eval_windows=3)
  out = embed.extract(model, params, clips, audio, batch_size=2, progress=False)
  without = embed.extract(dataclasses.replace(model, logmel_level=False), params, clips, audio,
                          batch_size=2, progress=False)
  assert set(out) == set(without) | {('logmel_level', 'two_channel'),
                                     ('logmel_level', 'left_duplicated')}
  for key in without:
    np.testing.assert_array_equal(out[key], without[key])
  for i, clip in enumerate(clips):
    wave, rate = sf.read(clip.path, dtype='float32')
    power = librosa.feature.melspectrogram(y=wave[:, 0], sr=rate, n_fft=1024, hop_length=512,
                                           n_mels=128, power=2.0)
    decibels = 10 * np.log10(np.maximum(power, 1e-30))
    expected = np.concatenate([decibels.mean(axis=1), decibels.std(axis=1)])
    for mode in ('two_channel', 'left_duplicated'):
      np.testing.assert_allclose(out['logmel_level', mode][i], expected, rtol=1e-4, atol=1e-4)
  audiomae, _ = build.build_branch(config, 'audiomae', num_attributes=3)
  assert not audiomae.logmel_level


def test_fbank_modulation_is_the_band_modulation_spectrum_of_the_gated_fbank():
  """model.fbank_modulation (BEATs only): [B, rows·6], brute force in NumPy with an explicit
  DFT sum: the gated 4-bin bands (as the fbank level mixes them), mean removed, Hann window,
  mean power in each modulation band, log, averaged per patch row (float32: 1e-3 on logs of
  powers); the left-duplicated one equals the model run on [near, near]. A crop too short to
  resolve the lowest band is a clear error."""
  config = tiny_config()
  config.model.patch_level, config.model.fbank_modulation = False, True
  model, params, wave, both, duplicated = one_pass_and_duplicated(config)
  edges = MODULATION_EDGES_HZ
  assert both['fbank_modulation'].shape == (3, 8 * (len(edges) - 1))
  np.testing.assert_allclose(np.asarray(both['fbank_modulation_left_duplicated']),
                             np.asarray(duplicated['fbank_modulation']), rtol=1e-4, atol=1e-3)
  features = np.asarray(fbank_lib.encoder_fbank(wave.reshape(6, -1), model.preset,
                                                model.num_mel_bins)).astype(np.float64)
  features = features.reshape(3, 2, -1, 128)
  gate = np.asarray(both['gate'], np.float64)
  frames = gate.shape[1] // 8 * 16
  bands = features[:, :, :frames].reshape(3, 2, frames, 32, 4).mean(-1)
  rows_of_gate = np.repeat(np.repeat(gate.reshape(3, -1, 8), 16, axis=1), 4, axis=2)
  mixed = rows_of_gate * bands[:, 0] + (1 - rows_of_gate) * bands[:, 1]
  n = np.arange(frames)
  window = 0.5 - 0.5 * np.cos(2 * np.pi * n / (frames - 1))
  mixed = (mixed - mixed.mean(axis=1, keepdims=True)) * window[None, :, None]
  log_power = np.zeros((3, 32, len(edges) - 1))
  for j in range(len(edges) - 1):
    ks = [k for k in range(frames // 2 + 1)  # 10-ms frames: bin k is k·100/frames Hz
          if edges[j] <= k * 100.0 / frames < edges[j + 1]]
    power = [np.abs((mixed * np.exp(-2j * np.pi * k * n / frames)[None, :, None]).sum(1))**2
             for k in ks]
    log_power[:, :, j] = np.log(np.mean(power, axis=0) + 1e-6)
  expected = log_power.reshape(3, 8, 4, -1).mean(2).reshape(3, -1)
  np.testing.assert_allclose(np.asarray(both['fbank_modulation']), expected, rtol=1e-4, atol=1e-3)
  config.data.clip_seconds = 0.5
  with pytest.raises(ValueError, match='modulation band'):
    build.build_branch(config, 'beats', num_attributes=3)


@pytest.mark.parametrize('branch', ['beats', 'audiomae'])
def test_steps_on_eight_devices_equal_one_device(branch):
  assert jax.device_count() == 8
  config = tiny_config()
  model, params = build.build_branch(config, branch, num_attributes=5)
  params = jax.device_get(params)  # host copies: the step donates its device state
  tx, schedule = step_lib.make_optimizer(config.optim, config.train.steps)
  rng = np.random.default_rng(0)
  batch = {'wave': rng.uniform(-0.5, 0.5, (8, 2, 16000)).astype(np.float32),
           'attribute_id': np.array([0, 1, 2, 3, 4, -1, 0, 1]),
           'domain_id': np.array([0, 1, 0, 0, 1, 0, 0, 0])}
  results = []
  for devices in (jax.devices(), jax.devices()[:1]):
    mesh = step_lib.data_mesh(devices)
    state = step_lib.replicate(mesh, step_lib.create_train_state(params, tx, build.is_trainable,
                                                                 config.seed))
    step = step_lib.compile_train_step(mesh, model=model, tx=tx, schedule=schedule,
                                       arcface=config.arcface)
    state, _ = step(state, step_lib.shard_batch(mesh, batch))  # lr is 0 at step 0 (warm-up)
    results.append(jax.device_get(step(state, step_lib.shard_batch(mesh, batch))))
  (state8, metrics8), (state1, metrics1) = results
  np.testing.assert_allclose(metrics8['loss'], metrics1['loss'], rtol=1e-5)
  flat8 = traverse_util.flatten_dict(state8.trainable)
  flat1 = traverse_util.flatten_dict(state1.trainable)
  for key in flat8:  # measured max |diff| ~1e-7 (reduction order)
    np.testing.assert_allclose(flat8[key], flat1[key], atol=1e-5, err_msg=str(key))
  before = traverse_util.flatten_dict(
      step_lib.create_train_state(params, tx, build.is_trainable, 0).trainable)
  assert all(np.abs(flat1[k] - before[k]).max() > 0 for k in flat1
             if k[-1] in ('lora_b', 'kernel')), 'every trainable kernel moved'
  frozen0 = traverse_util.flatten_dict(lora_frozen(params))
  for key, value in traverse_util.flatten_dict(state8.frozen).items():
    np.testing.assert_array_equal(value, frozen0[key])


@pytest.mark.parametrize('branch', ['beats', 'audiomae'])
def test_rematerialised_layers_give_the_same_step_in_less_memory(branch):
  """config.model.remat changes what the backward pass keeps, not the update."""
  rng = np.random.default_rng(0)
  batch = {'wave': rng.uniform(-0.5, 0.5, (8, 2, 16000)).astype(np.float32),
           'attribute_id': np.array([0, 1, 2, 3, 4, -1, 0, 1]),
           'domain_id': np.array([0, 1, 0, 0, 1, 0, 0, 0])}
  mesh = step_lib.data_mesh(jax.devices()[:1])
  results, temp_bytes = {}, {}
  for remat in ('none', 'attention', 'full'):
    config = tiny_config()
    config.model.remat = remat
    model, params = build.build_branch(config, branch, num_attributes=5)
    tx, schedule = step_lib.make_optimizer(config.optim, config.train.steps)
    state = step_lib.replicate(mesh, step_lib.create_train_state(params, tx, build.is_trainable,
                                                                 config.seed))
    step = step_lib.compile_train_step(mesh, model=model, tx=tx, schedule=schedule,
                                       arcface=config.arcface)
    sharded = step_lib.shard_batch(mesh, batch)
    compiled = step.lower(state, sharded).compile()
    temp_bytes[remat] = compiled.memory_analysis().temp_size_in_bytes
    state, _ = compiled(state, sharded)  # lr is 0 at step 0 (warm-up)
    results[remat] = jax.device_get(compiled(state, sharded))
  reference_state, reference_metrics = results['none']
  reference = traverse_util.flatten_dict(reference_state.trainable)
  for remat in ('attention', 'full'):
    state, metrics = results[remat]
    np.testing.assert_allclose(metrics['loss'], reference_metrics['loss'], rtol=1e-5)
    for key, value in traverse_util.flatten_dict(state.trainable).items():
      np.testing.assert_allclose(value, reference[key], atol=1e-5, err_msg=f'{remat} {key}')
  assert temp_bytes['full'] < temp_bytes['attention'] < temp_bytes['none'], temp_bytes


def lora_frozen(params):
  from asd_jax.encoders import lora
  return lora.split_trainable(params, build.is_trainable)[1]


def test_bad_config_values_fail_in_one_line(tmp_path):
  config = tiny_config()
  config.branches = ('beats', 'wav2vec')
  with pytest.raises(build.ConfigError, match="unknown encoder 'wav2vec'"):
    build.validate(config, 1)
  config = tiny_config()
  config.model.remat = 'some'
  with pytest.raises(build.ConfigError, match="config.model.remat: 'some'"):
    build.validate(config, 1)
  config = tiny_config()
  config.lora.rank = 0
  with pytest.raises(build.ConfigError, match='rank must be > 0'):
    build.validate(config, 1)
  config = tiny_config()
  config.beats.checkpoint = str(tmp_path / 'nowhere')
  with pytest.raises(build.ConfigError, match='not a converted checkpoint folder'):
    build.validate(config, 1)
  config = tiny_config()
  config.train.batch_size = 12
  with pytest.raises(build.ConfigError, match='does not split over 8 devices'):
    build.validate(config, 8)
  config = tiny_config()
  config.score.bank_calibration = 'zscore'
  with pytest.raises(build.ConfigError, match="bank_calibration: 'zscore' is not one of"):
    build.validate(config, 1)
  config = tiny_config()
  config.embed.windows = 0
  with pytest.raises(build.ConfigError, match='embed.windows must be at least 1'):
    build.validate(config, 1)
  config = tiny_config()
  config.model.fbank_level_span = 'frames'
  with pytest.raises(build.ConfigError, match="fbank_level_span: 'frames' is not one of"):
    build.validate(config, 1)


def _train_command(data, workdir, steps):
  return [sys.executable, '-m', 'asd_jax.cli.main', 'train', f'--data_dir={data}',
          f'--workdir={workdir}', '--config.branches=beats', f'--config.train.steps={steps}',
          '--config.train.checkpoint_every=5', '--config.train.log_every=5',
          '--config.train.eval_every=100', '--config.train.batch_size=8',
          '--config.data.clip_seconds=1.0', '--config.data.num_workers=1',
          '--config.optim.warmup_steps=5']  # the shipped encoder: no pre-training stage


def _final_trainable(workdir, step):
  path = os.path.join(workdir, 'train/beats/checkpoints', str(step), 'state')
  with ocp.StandardCheckpointer() as checkpointer:
    return traverse_util.flatten_dict(checkpointer.restore(path)['trainable'])


def test_killed_run_resumes_to_identical_parameters(tmp_path):
  data = str(tmp_path / 'data')
  synthetic.generate(data, synthetic.SynthConfig(machines=('fan', 'valve'), clip_seconds=1.0,
                                                 source_train=10, target_train=2,
                                                 test_per_group=1))
  env = {**os.environ, 'PYTHONPATH': REPO, 'XLA_FLAGS': ''}
  steps = 30
  straight = str(tmp_path / 'straight')
  done = subprocess.run(_train_command(data, straight, steps), env=env, capture_output=True,
                        text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]

  interrupted = str(tmp_path / 'interrupted')
  proc = subprocess.Popen(_train_command(data, interrupted, steps), env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)  # its own process group: see the kill below
  first = os.path.join(interrupted, 'train/beats/checkpoints/5')
  deadline = time.time() + 300
  while not os.path.isdir(first) and time.time() < deadline and proc.poll() is None:
    time.sleep(0.05)
  os.killpg(proc.pid, signal.SIGKILL)  # the job and its Grain worker, as a preemption would:
  proc.wait()  # killing the job alone left the worker orphaned, running after the suite
  saved = [int(s) for s in os.listdir(os.path.join(interrupted, 'train/beats/checkpoints'))
           if s.isdigit()]
  assert saved and max(saved) < steps, f'the run was not interrupted early enough: {saved}'
  resumed = subprocess.run(_train_command(data, interrupted, steps), env=env,
                           capture_output=True, text=True, timeout=600)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert f'resumed from {max(saved)}' in resumed.stdout

  a, b = _final_trainable(straight, steps), _final_trainable(interrupted, steps)
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_allclose(a[key], b[key], atol=1e-6, err_msg=str(key))
  with open(os.path.join(straight, 'train/beats/metrics.jsonl')) as f:
    log = [json.loads(line) for line in f]
  assert [r['step'] for r in log] == [5, 10, 15, 20, 25, 30]
  assert log[-1]['loss'] < log[0]['loss']
  with open(os.path.join(interrupted, 'train/beats/metrics.jsonl')) as f:
    assert [json.loads(line)['step'] for line in f] == [5, 10, 15, 20, 25, 30]
  again = subprocess.run(_train_command(data, interrupted, steps), env=env, capture_output=True,
                         text=True, timeout=600)
  assert 'already finished' in again.stdout
