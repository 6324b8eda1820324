"""The official autoencoder baseline's training: the compiled epoch equals the plain step loop."""
import jax
import jax.numpy as jnp
import numpy as np

from asd_jax.baselines import autoencoder


def test_scanned_epochs_equal_a_loop_of_single_steps():
  """train_autoencoder runs each epoch as one lax.scan; a Python loop of the same Adam steps over
  the same batches (the official recipe: shuffled, last partial batch dropped) must give the
  same model (float32: rtol 1e-5)."""
  rng = np.random.default_rng(0)
  vectors = (rng.normal(size=(700, 640)) * 3 + 20).astype(np.float32)
  domains = np.array(['source'] * 650 + ['target'] * 50)
  epochs, batch, lr, seed = 3, 256, 1e-3, 4
  trained = autoencoder.train_autoencoder(vectors, domains, epochs, batch, lr, seed)

  variables = autoencoder.AutoEncoder().init(jax.random.PRNGKey(seed), jnp.zeros((2, 640)),
                                             train=False)
  params, stats = variables['params'], variables['batch_stats']
  opt_state = autoencoder._adam(lr).init(params)
  step = jax.jit(autoencoder._train_step, static_argnames=('learning_rate',))
  order_rng = np.random.default_rng(seed)
  for _ in range(epochs):
    order = order_rng.permutation(len(vectors))
    for start in range(0, len(order) - batch + 1, batch):  # 2 full batches, 188 rows dropped
      params, stats, opt_state, _ = step(params, stats, opt_state,
                                         jnp.asarray(vectors[order[start:start + batch]]),
                                         learning_rate=lr)
  looped = autoencoder.TrainedAE({'params': params, 'batch_stats': stats}, {})
  test = (rng.normal(size=(40, 640)) * 3 + 20).astype(np.float32)
  np.testing.assert_allclose(trained.errors(test), looped.errors(test), rtol=1e-5, atol=1e-4)
  untrained = autoencoder.TrainedAE(variables, {})
  assert not np.allclose(trained.errors(test), untrained.errors(test), atol=1e-2)
