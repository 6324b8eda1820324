"""Hand-written LoRA: identity at step 0, merge equivalence, frozen weights get no gradient."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from asd_jax.encoders import LoRAConfig, load_encoder
from asd_jax.encoders import lora as lora_lib
from tests.conftest import fixture_path

LORA = LoRAConfig(rank=8, alpha=16.0, dropout=0.1, targets=('q', 'v', 'fc1'))


@pytest.fixture(scope='module')
def encoders(beats_small_dir):
  base = load_encoder(beats_small_dir)
  adapted = base.with_lora(LORA, jax.random.PRNGKey(1))
  return base, adapted


@pytest.fixture(scope='module')
def wave():
  return np.load(fixture_path('beats_small_io.npz'))['wave'][:, :32000]


def randomise_b(params, key):
  """Random B so the adapters actually change the output."""
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  leaves = []
  for i, (path, leaf) in enumerate(flat):
    if str(path[-1].key) == lora_lib.LORA_B:
      leaf = 0.05 * jax.random.normal(jax.random.fold_in(key, i), leaf.shape)
    leaves.append(leaf)
  return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), leaves)


def test_adapters_sit_on_the_configured_targets(encoders):
  _, adapted = encoders
  trainable, frozen = lora_lib.split_trainable(adapted.params)
  assert set(trainable['layers']) == {'q', 'v', 'fc1'}
  a = adapted.params['layers']['q'][lora_lib.LORA_A]
  assert a.shape == (2, 128, 8)  # stacked over the 2 layers
  assert not np.any(np.asarray(adapted.params['layers']['q'][lora_lib.LORA_B]))
  assert all(not lora_lib.is_lora_path(k) for k in traverse_util.flatten_dict(frozen))


def test_zero_b_equals_base_model(encoders, wave):
  base, adapted = encoders
  np.testing.assert_array_equal(np.asarray(adapted(wave)), np.asarray(base(wave)))


def test_merged_equals_unmerged(encoders, wave):
  base, adapted = encoders
  params = randomise_b(adapted.params, jax.random.PRNGKey(2))
  unmerged = np.asarray(adapted.apply(params, jnp.asarray(wave)))
  merged = np.asarray(base.apply(lora_lib.merge_lora(params, LORA), jnp.asarray(wave)))
  assert np.abs(unmerged - np.asarray(base(wave))).max() > 1e-2  # the adapters do something
  np.testing.assert_allclose(merged, unmerged, atol=2e-5)


def test_gradient_flows_only_to_lora_and_dropout_only_in_training(encoders, wave):
  _, adapted = encoders
  params = randomise_b(adapted.params, jax.random.PRNGKey(3))
  trainable, frozen = lora_lib.split_trainable(params)

  def loss(trainable, frozen, rng):
    tokens = adapted.apply(lora_lib.combine(trainable, frozen), jnp.asarray(wave),
                           deterministic=False, rngs={'dropout': rng})
    return jnp.mean(tokens**2)

  grads_t = jax.grad(loss)(trainable, frozen, jax.random.PRNGKey(0))
  assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree_util.tree_leaves(grads_t))
  # What the training step does: frozen weights enter through stop_gradient only.
  frozen_grads = jax.grad(lambda f: loss(trainable, jax.lax.stop_gradient(f),
                                         jax.random.PRNGKey(0)))(frozen)
  assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree_util.tree_leaves(frozen_grads))
  det = [np.asarray(adapted.apply(params, jnp.asarray(wave))) for _ in range(2)]
  np.testing.assert_array_equal(det[0], det[1])
  train = [np.asarray(adapted.apply(params, jnp.asarray(wave), deterministic=False,
                                    rngs={'dropout': jax.random.PRNGKey(i)})) for i in range(2)]
  assert np.abs(train[0] - train[1]).max() > 0


def test_bad_lora_config_is_refused():
  with pytest.raises(ValueError, match='rank'):
    LoRAConfig(rank=-1)
  with pytest.raises(ValueError, match='unknown LoRA targets'):
    LoRAConfig(rank=8, targets=('q', 'qkv'))


def test_an_adapted_layer_adds_alpha_over_r_times_x_a_b():
  """One LoRADense against NumPy: y = x·W + b + (alpha/r)·x·A·B with alpha/r = 16/8 = 2 written
  out, not read from the config (merged and unmerged share the scale, so their equality alone
  would not see a wrong one; float32: 1e-5)."""
  layer = lora_lib.LoRADense(6, LoRAConfig(rank=8, alpha=16.0, dropout=0.1, targets=('q',)))
  x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
  params = layer.init(jax.random.PRNGKey(0), x)['params']
  params = dict(params, **{lora_lib.LORA_B: 0.1 * jax.random.normal(jax.random.PRNGKey(1),
                                                                    (8, 6))})
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  expected = x @ p['kernel'] + p['bias'] + 2.0 * x @ p[lora_lib.LORA_A] @ p[lora_lib.LORA_B]
  np.testing.assert_allclose(np.asarray(layer.apply({'params': params}, x)), expected,
                             rtol=1e-5, atol=1e-5)
