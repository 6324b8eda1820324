"""The reference systems (baselines/): the official autoencoder baseline and the log-mel
reference detector."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.covariance import LedoitWolf

from asd_jax.baselines import autoencoder, logmel_reference
from asd_jax.data import layout, synthetic


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


def test_job_trains_machine_types_side_by_side_with_the_serial_scores(tmp_path):
  """The job trains one AE per machine type in threads, and the log-mel reference takes its
  features from the baselines' log-mels: the submissions must equal those of one thread (bit
  for bit), and the reference those of `reference_scores` reading the files itself."""
  from asd_jax import job as job_lib
  from asd_jax.baselines import logmel_reference
  from asd_jax.data import layout, synthetic
  from asd_jax.evaluation import submission
  from asd_jax.configs import default
  root = str(tmp_path / 'data')
  synthetic.generate(root, synthetic.SynthConfig(machines=('fan', 'valve'), clip_seconds=1.0,
                                                 source_train=8, target_train=3,
                                                 test_per_group=3))
  manifest = layout.scan_dataset(root)
  config = default.get_config()
  config.baseline.epochs = 2
  systems = ('baseline_mse', 'baseline_mahalanobis', 'reference_logmel')
  scores = {}
  for threads in (1, 2):
    config.baseline.concurrent_machines = threads
    job = job_lib.Job(config, str(tmp_path / f'threads{threads}'), progress=False)
    assert job.baselines(manifest) + job.reference(manifest) == list(systems)
    scores[threads] = {s: submission.read_scores(job.submission_dir(s)) for s in systems}
  assert scores[1] == scores[2]
  test = manifest.select(machine='fan', split='test')
  _, direct = logmel_reference.reference_scores(manifest.select(machine='fan', split='train'),
                                                test)
  written = scores[2]['reference_logmel']['fan', '00']
  np.testing.assert_allclose([written[c.file_name] for c in test], direct, rtol=1e-6)


def _brute_force_reference(train, train_domains, test):
  """sklearn's Ledoit-Wolf per domain bank, Mahalanobis distance, minimum over the banks."""
  distances = []
  for domain in sorted(set(train_domains)):
    bank = train[np.asarray(train_domains) == domain]
    fit = LedoitWolf().fit(bank)
    distances.append(np.sqrt(fit.mahalanobis(test)))
  return np.min(distances, axis=0)


def test_logmel_reference_matches_brute_force(tmp_path):
  root = str(tmp_path / 'data')
  synthetic.generate(root, synthetic.SynthConfig(machines=('valve',), clip_seconds=1.0,
                                                 source_train=12, target_train=4,
                                                 test_per_group=3))
  manifest = layout.scan_dataset(root)
  train = manifest.select(split='train')
  test = manifest.select(split='test')
  _, scores = logmel_reference.reference_scores(train, test)
  features = np.stack([logmel_reference.clip_features(c.path) for c in train])
  assert features.shape == (16, 256)
  expected = _brute_force_reference(
      features, [c.domain for c in train],
      np.stack([logmel_reference.clip_features(c.path) for c in test]))
  np.testing.assert_allclose(scores, expected, rtol=2e-3)  # float32 distances


def test_ae_scores_are_the_mse_and_the_selective_mahalanobis_of_the_official_recipe():
  """TrainedAE.scores of a clip's vectors against NumPy: MSE the mean squared reconstruction
  error over its vectors and dimensions; selective Mahalanobis, as the official code computes
  it, the mean of the full n×n matrix E Σ_d⁺ Eᵀ of the clip's error vectors E, with Σ_d the
  (n − 1)-normalised covariance of the training errors of domain d alone, minimum over the
  domains. The two domains' errors differ in spread, so one covariance for both would not
  match (float64 on the same errors: rtol 1e-6)."""
  rng = np.random.default_rng(2)
  dim = 24
  source = (rng.normal(size=(300, dim)) * 2 + 5).astype(np.float32)
  scale = np.linspace(0.2, 5.0, dim).astype(np.float32)  # target errors: another shape
  target = (rng.normal(size=(60, dim)) * scale + 5).astype(np.float32)
  vectors = np.concatenate([source, target])
  domains = np.array(['source'] * 300 + ['target'] * 60)
  trained = autoencoder.train_autoencoder(vectors, domains, epochs=2, batch_size=64,
                                          learning_rate=1e-3, seed=0)
  errors = trained.errors(vectors).astype(np.float64)
  precisions = {d: np.linalg.pinv(np.cov(errors[domains == d], rowvar=False))
                for d in ('source', 'target')}
  assert not np.allclose(precisions['source'], precisions['target'], rtol=0.1)
  for clip in (source[:7], target[:9], (rng.normal(size=(5, dim)) * 4 + 5).astype(np.float32)):
    e = trained.errors(clip).astype(np.float64)
    mse, selective = trained.scores(clip)
    assert mse == pytest.approx(np.mean(e**2), rel=1e-6)
    per_domain = [float(np.mean(e @ p @ e.T)) for p in precisions.values()]
    assert selective == pytest.approx(min(per_domain), rel=1e-6)
