"""Self-supervised pre-training of tiny encoders: patch layout, loss, and the stage end to end."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from asd_jax.data import synthetic
from asd_jax.data.layout import scan_dataset
from asd_jax.encoders.checkpoint import load_converted
from asd_jax.encoders.layers import PatchEmbed
from asd_jax.model import build
from asd_jax.train import loop, pretrain
from asd_jax.configs import default


def test_patchify_is_the_patch_embedding_order():
  """PatchEmbed(fbank) must equal patchify(fbank) @ kernel: the head's targets line up with the
  tokens. 100 frames: the 4 trailing frames beyond 6 patches are dropped by both."""
  fbank = jax.random.normal(jax.random.PRNGKey(0), (2, 100, 128))
  embed = PatchEmbed(24, 16, use_bias=False)
  params = embed.init(jax.random.PRNGKey(1), fbank)['params']
  tokens = embed.apply({'params': params}, fbank)
  flat = pretrain.patchify(fbank, 16) @ params['kernel'][:, :, 0].reshape(256, 24)
  np.testing.assert_allclose(np.asarray(tokens), np.asarray(flat), atol=1e-4)


def test_blank_patches_zeroes_exactly_the_masked_patches():
  fbank = jax.random.normal(jax.random.PRNGKey(0), (2, 100, 128)) + 3.0
  mask = jax.random.uniform(jax.random.PRNGKey(1), (2, 48)) < 0.3
  blanked = pretrain.blank_patches(fbank, mask, 16)
  assert blanked.shape == fbank.shape
  expected = np.where(np.asarray(mask)[..., None], 0.0, np.asarray(pretrain.patchify(fbank, 16)))
  np.testing.assert_array_equal(np.asarray(pretrain.patchify(blanked, 16)), expected)
  np.testing.assert_array_equal(np.asarray(blanked[:, 96:]), np.asarray(fbank[:, 96:]))


def test_reconstruction_loss_matches_numpy():
  rng = np.random.default_rng(0)
  predicted, target = rng.normal(size=(2, 3, 5, 4))
  mask = rng.uniform(size=(3, 5)) < 0.4
  loss, (masked, visible) = pretrain.reconstruction_loss(jnp.asarray(predicted),
                                                         jnp.asarray(target), mask, 0.5)
  error = ((predicted - target)**2).mean(-1)
  np.testing.assert_allclose(float(masked), error[mask].mean(), rtol=1e-6)
  np.testing.assert_allclose(float(visible), error[~mask].mean(), rtol=1e-6)
  np.testing.assert_allclose(float(loss), error[mask].mean() + 0.5 * error[~mask].mean(),
                             rtol=1e-6)


@pytest.mark.parametrize('branch', ['beats', 'audiomae'])
def test_pretraining_learns_and_training_starts_from_it(branch, tmp_path):
  data = str(tmp_path / 'data')
  synthetic.generate(data, synthetic.SynthConfig(machines=('valve',), clip_seconds=1.0,
                                                 source_train=8, target_train=2,
                                                 test_per_group=1))
  manifest = scan_dataset(data)
  config = default.get_config()
  config[branch].checkpoint = ''
  config.branches = (branch,)
  config.data.clip_seconds = 1.0
  config.data.num_workers = 0
  config.audiomae.tiny.num_frames = 96
  config.pretrain.steps = 40
  config.pretrain.batch_size = 4
  config.pretrain.warmup_steps = 5
  config.train.log_every = 5
  config.train.steps = 2
  config.optim.warmup_steps = 1
  config.train.batch_size = 8
  config.model.embed_dim = 32
  workdir = str(tmp_path / 'w')
  labels = loop.label_space(manifest, workdir)
  out = pretrain.pretrained_dir(workdir, branch)
  log = pretrain.pretrain_encoder(config, branch, loop.train_clips(manifest), labels,
                                  loop.audio_config(config), out, progress=False)
  assert [r['step'] for r in log] == list(range(5, 41, 5))
  first, last = log[0], log[-1]
  assert last['masked_mse'] < 0.7 * first['masked_mse'], log
  assert last['visible_mse'] < 0.7 * first['visible_mse'], log

  saved, arch = load_converted(out)
  assert arch == build.encoder_config(config, branch)[0]
  _, random_params = build.build_branch(config, branch, labels.num_attributes)
  random_flat = traverse_util.flatten_dict(random_params['encoder'])
  saved_flat = traverse_util.flatten_dict(saved)
  assert set(saved_flat) == {k for k in random_flat if 'lora_a' not in k and 'lora_b' not in k}
  assert any(np.abs(saved_flat[k] - random_flat[k]).max() > 1e-3 for k in saved_flat)

  loop.train_branch(config, branch, manifest, workdir, progress=False)  # reuses `out`
  trained = loop.load_trained(config, branch, manifest, workdir)
  frozen = traverse_util.flatten_dict(trained.state.frozen['encoder'])
  for key, value in saved_flat.items():
    np.testing.assert_array_equal(np.asarray(frozen[key]), value, err_msg=str(key))
  assert os.listdir(os.path.dirname(out)) == [branch]  # no staging folders left behind


def test_unit_contrastive_loss_matches_numpy():
  """NT-Xent with rows 2i and 2i + 1 as the positive pair, brute-forced row by row."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(6, 5))
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  loss, accuracy = pretrain.unit_contrastive_loss(jnp.asarray(x), 0.2)
  losses, hits = [], []
  for i in range(6):
    others = [j for j in range(6) if j != i]
    logits = np.array([x[i] @ x[j] / 0.2 for j in others])
    partner = others.index(i ^ 1)
    losses.append(np.log(np.exp(logits).sum()) - logits[partner])
    hits.append(np.argmax(logits) == partner)
  np.testing.assert_allclose(float(loss), np.mean(losses), rtol=1e-5)
  assert float(accuracy) == pytest.approx(np.mean(hits))


def test_contrastive_pretraining_step_reports_the_term_and_ships_only_the_encoder(tmp_path):
  """With contrastive_weight the step adds the term (and a projector), and the written
  encoder has exactly the parameters of a reconstruction-only one."""
  config = default.get_config()
  config.data.clip_seconds = 1.0
  config.pretrain.batch_size = 2
  config.beats.tiny.encoder_layers = 1
  config.beats.checkpoint = ''  # the tiny architecture, randomly initialised
  plain = pretrain.pretraining_parts(config, 'beats', 2)
  config.pretrain.contrastive_weight = 0.5
  parts = pretrain.pretraining_parts(config, 'beats', 2)
  assert 'projector' in parts.params and 'projector' not in plain.params
  wave = 0.1 * np.random.default_rng(0).normal(size=(4, parts.samples)).astype(np.float32)
  _, _, metrics = parts.step(parts.params, parts.opt_state, jnp.asarray(wave), parts.rng)
  assert {'contrastive', 'pair_accuracy', 'masked_mse'} <= set(metrics)
  assert float(metrics['contrastive']) > 0
  flat = lambda p: sorted(traverse_util.flatten_dict(p['encoder']))
  assert flat(parts.params) == flat(plain.params)
