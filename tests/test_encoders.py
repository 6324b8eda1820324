"""Flax BEATs / AudioMAE against the official PyTorch outputs, and full-size shape checks."""

import jax
import numpy as np
import pytest

from asd_jax.encoders import load_encoder
from checkpoints_convert import official_layout
from checkpoints_convert.__main__ import main as convert_main
from tests.conftest import fixture_path

TOKEN_ATOL = 1e-4  # the target; measured BEATs 3.0e-5, AudioMAE 2.5e-5


def test_beats_tokens_match_official(beats_small_dir):
  data = np.load(fixture_path('beats_small_io.npz'))
  tokens = np.asarray(load_encoder(beats_small_dir)(data['wave']))
  assert tokens.shape == data['features'].shape == (2, 192, 128)
  np.testing.assert_allclose(tokens, data['features'], atol=TOKEN_ATOL)


def test_audiomae_tokens_match_official(audiomae_small_dir):
  data = np.load(fixture_path('audiomae_small_io.npz'))
  encoder = load_encoder(audiomae_small_dir)
  tokens = np.asarray(encoder(jax.numpy.asarray(data['wave'])))  # JAX input accepted too
  assert tokens.shape == data['tokens'].shape == (2, 513, 128)
  np.testing.assert_allclose(tokens, data['tokens'], atol=TOKEN_ATOL)


def test_finetuned_beats_classify_is_sigmoid_of_mean_predictor(tmp_path):
  """A fine-tuned file: enc(wave) stays the backbone, classify() follows extract_features."""
  import torch
  ckpt = torch.load(fixture_path('beats_small.pt'), weights_only=True)
  rng = np.random.default_rng(0)
  w, b = rng.normal(0, 0.1, (7, 128)).astype(np.float32), rng.normal(0, 0.1, 7).astype(np.float32)
  ckpt['cfg'].update(finetuned_model=True, predictor_class=7)
  ckpt['model']['predictor.weight'], ckpt['model']['predictor.bias'] = map(torch.from_numpy, (w, b))
  torch.save(ckpt, tmp_path / 'ft.pt')
  assert convert_main(['beats', '--input', str(tmp_path / 'ft.pt'),
                       '--output', str(tmp_path / 'ft')]) == 0
  data = np.load(fixture_path('beats_small_io.npz'))
  encoder = load_encoder(str(tmp_path / 'ft'))
  np.testing.assert_allclose(np.asarray(encoder(data['wave'])), data['features'], atol=TOKEN_ATOL)
  expected = 1 / (1 + np.exp(-(data['features'] @ w.T + b).mean(axis=1)))
  np.testing.assert_allclose(np.asarray(encoder.classify(data['wave'])), expected, atol=1e-4)


def test_host_weights_are_put_on_the_device_once(beats_small_dir):
  """NumPy weights handed to Encoder become device arrays, not a host copy at every call."""
  from asd_jax.encoders import Encoder
  from asd_jax.encoders.checkpoint import load_converted
  params, config = load_converted(beats_small_dir)
  host = jax.tree_util.tree_map(np.asarray, params)
  encoder = Encoder(config, host)
  assert all(isinstance(leaf, jax.Array) for leaf in jax.tree_util.tree_leaves(encoder.params))
  data = np.load(fixture_path('beats_small_io.npz'))
  np.testing.assert_allclose(np.asarray(encoder(data['wave'])), data['features'], atol=TOKEN_ATOL)


def test_bad_waveform_is_refused(beats_small_dir):
  encoder = load_encoder(beats_small_dir)
  with pytest.raises(ValueError, match=r'\[B, S\]'):
    encoder(np.zeros(16000, np.float32))
  with pytest.raises(ValueError, match='float'):
    encoder(np.zeros((1, 16000), np.int16))


@pytest.mark.parametrize('model, expected_millions', [('beats', 90.3), ('audiomae', 85.6)])
def test_full_size_official_layout_converts_and_runs_ten_seconds(tmp_path, model,
                                                                 expected_millions):
  source = str(tmp_path / f'{model}.pt')
  if model == 'beats':
    official_layout.save_beats(
        source, official_layout.BEATS_BASE_CFG,
        official_layout.beats_state_dict(official_layout.BEATS_BASE_CFG))
    argv = ['beats', '--input', source, '--output', str(tmp_path / 'out')]
  else:
    official_layout.save_audiomae(source, official_layout.audiomae_state_dict())
    argv = ['audiomae', '--input', source, '--output', str(tmp_path / 'out')]
  assert convert_main(argv) == 0
  encoder = load_encoder(str(tmp_path / 'out'))
  count = sum(np.size(x) for x in jax.tree_util.tree_leaves(encoder.params))
  assert abs(count / 1e6 - expected_millions) < 0.1, count
  wave = np.random.default_rng(0).uniform(-0.3, 0.3, (1, 160000)).astype(np.float32)
  tokens = np.asarray(encoder(wave))
  assert tokens.shape == ((1, 496, 768) if model == 'beats' else (1, 513, 768))
  assert np.isfinite(tokens).all()


def test_bfloat16_compute_stays_close_to_float32(beats_small_dir):
  """bf16 matmuls (fp32 softmax and norms): measured max |diff| 0.043, mean 0.0044 on tokens
  of mean magnitude 0.79, cosine to the official tokens >= 0.99996."""
  import jax.numpy as jnp
  data = np.load(fixture_path('beats_small_io.npz'))
  tokens = np.asarray(load_encoder(beats_small_dir, dtype=jnp.bfloat16)(data['wave']),
                      np.float32)
  ref = data['features']
  assert np.abs(tokens - ref).mean() < 0.01
  cos = np.sum(tokens * ref, -1) / np.linalg.norm(tokens, axis=-1) / np.linalg.norm(ref, axis=-1)
  assert cos.min() > 0.9995


@pytest.mark.parametrize('model', ['beats', 'audiomae'])
def test_fused_attention_matches_official_and_the_matmul_gradients(model, beats_small_dir,
                                                                   audiomae_small_dir):
  """attention='fused' (jax.nn.dot_product_attention; XLA's on a CPU, the code path cuDNN's
  kernel takes on a GPU): tokens within TOKEN_ATOL of the official outputs (BEATs: its gated
  relative-position bias included), and for BEATs the gradient of a loss in the LoRA weights
  (B random, so every adapter acts) within 1e-4 relative to the 'matmul' attention's."""
  import jax.numpy as jnp
  from asd_jax.encoders import Encoder
  from asd_jax.encoders.checkpoint import load_converted
  from asd_jax.encoders.config import LoRAConfig
  from asd_jax.encoders.lora import LORA_B, combine, split_trainable
  folder, key = ((beats_small_dir, 'features') if model == 'beats'
                 else (audiomae_small_dir, 'tokens'))
  data = np.load(fixture_path(f'{model}_small_io.npz'))
  params, config = load_converted(folder)
  fused = Encoder(config, params, attention='fused')
  np.testing.assert_allclose(np.asarray(fused(data['wave'])), data[key], atol=TOKEN_ATOL)
  if model == 'audiomae':
    return  # no bias: the gradient check is BEATs', whose bias depends on the LoRA'd q
  lora = LoRAConfig(rank=4, alpha=8.0, dropout=0.0, targets=('q', 'v'))
  gradients = {}
  for attention in ('matmul', 'fused'):
    encoder = Encoder(config, params, attention=attention).with_lora(lora, jax.random.PRNGKey(1))
    tree = jax.tree_util.tree_map_with_path(
        lambda path, x: (jax.random.normal(jax.random.PRNGKey(2), x.shape) * 0.1
                         if path[-1].key == LORA_B else x), encoder.params)
    trainable, frozen = split_trainable(tree)
    wave = jnp.asarray(data['wave'])

    def loss(t):
      return jnp.mean(encoder.apply(combine(t, frozen), wave) ** 2)

    gradients[attention] = jax.tree_util.tree_leaves(jax.jit(jax.grad(loss))(trainable))
  for got, want in zip(gradients['fused'], gradients['matmul']):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def _autodiff_attention(q, k, v, table, gate, key, rate):
  """The attention written out for jax.grad: what layers.attend's hand-written backward must
  reproduce (it keeps the log-sum-exp, not the probabilities)."""
  import jax.numpy as jnp
  q, k, v = (jnp.swapaxes(x, 1, 2) for x in (q, k, v))
  scores = (q * q.shape[-1]**-0.5) @ jnp.swapaxes(k, -1, -2)
  if table is not None:
    scores = scores + (table[None] if gate is None else gate[..., None] * table)
  probs = jax.nn.softmax(scores, axis=-1)
  if rate:
    probs = jnp.where(jax.random.bernoulli(key, 1 - rate, probs.shape), probs / (1 - rate), 0)
  out = jnp.swapaxes(probs @ v, 1, 2)
  return out.reshape(*out.shape[:2], -1)


@pytest.mark.parametrize('bias,rate', [('none', 0.0), ('table', 0.0), ('gated', 0.0),
                                       ('gated', 0.1)])
def test_attention_backward_matches_autodiff(bias, rate):
  """attend's custom backward (probabilities rebuilt from the log-sum-exp, one pass) against
  jax.grad of the attention written out: values within 1e-6 of the largest (measured ≤ 2.3e-7),
  gradients in q, k, v, the bias table and the gate within 1e-5 of the largest (measured
  ≤ 9e-7)."""
  import jax.numpy as jnp
  from asd_jax.encoders.layers import attend
  rng = np.random.default_rng(0)
  b, n, h, d = 2, 37, 3, 8
  q, k, v = (jnp.asarray(rng.normal(size=(b, n, h, d)), jnp.float32) for _ in range(3))
  table = None if bias == 'none' else jnp.asarray(rng.normal(size=(h, n, n)), jnp.float32)
  gate = (jnp.asarray(rng.uniform(1, 3, size=(b, h, n)), jnp.float32) if bias == 'gated'
          else None)
  weights = jnp.asarray(rng.normal(size=(b, n, h * d)), jnp.float32)
  key = jax.random.PRNGKey(3) if rate else None
  inputs = (q, k, v, table, gate)
  wrt = tuple(i for i, x in enumerate(inputs) if x is not None)

  def ours(*args):
    return jnp.sum(weights * attend(*args, dropout_rate=rate, dropout_key=key))

  def autodiff(*args):
    return jnp.sum(weights * _autodiff_attention(*args, key, rate))

  value = attend(*inputs, dropout_rate=rate, dropout_key=key)
  expected = _autodiff_attention(*inputs, key, rate)
  np.testing.assert_allclose(value, expected, atol=1e-6 * np.abs(expected).max())
  got = jax.jit(jax.grad(ours, wrt))(*inputs)
  want = jax.jit(jax.grad(autodiff, wrt))(*inputs)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, atol=1e-5 * np.abs(w).max())
