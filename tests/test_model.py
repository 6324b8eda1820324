"""The two-channel model (model/): ArcFace heads, gated fusion, pooling, the left-duplicated
embedding from one pass."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asd_jax.model import GatedFusion, arcface_logits, arcface_loss
from asd_jax.model import build
from asd_jax.model.asd_model import POOLINGS
from asd_jax.model.fusion import frequency_row_pooling
from tests.conftest import tiny_config


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


def test_row_gate_is_the_gate_of_each_patch_row_averaged_over_time():
  """'row_gate' [B, rows]: the gate of the patches of each frequency row (tokens time-major,
  n = t·rows + row), averaged over time, with AudioMAE's cls token left out."""
  config = tiny_config()
  _, _, _, both, _ = one_pass_and_duplicated(config)
  gate = np.asarray(both['gate'])
  expected = np.stack([[gate[b, row::8].mean() for row in range(8)] for b in range(3)])
  np.testing.assert_allclose(np.asarray(both['row_gate']), expected, rtol=1e-6)
  model, params = build.build_branch(config, 'audiomae', num_attributes=3)
  out = model.apply({'params': params}, 0.1 * jnp.ones((1, 2, 16000)))
  np.testing.assert_allclose(np.asarray(out['row_gate']),
                             np.asarray(out['gate'])[:, 1:].reshape(1, -1, 8).mean(1), rtol=1e-6)


