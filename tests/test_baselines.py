"""The reference systems (baselines/): the official autoencoder baseline and the log-mel
reference detector."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.covariance import LedoitWolf

from asd_jax.baselines import autoencoder, frame_store, logmel_reference
from asd_jax.data import layout, synthetic


def _store(tmp_path, clips, name='store'):
  """A FrameStore of [(frames [128, T], domain)]."""
  store = frame_store.FrameStore(str(tmp_path / f'{name}.f32'))
  for i, (frames, domain) in enumerate(clips):
    store.append(frames, domain, f'clip{i}')
  return store


def _frames(rng, count, scale=3.0, offset=20.0):
  return (rng.normal(size=(128, count)) * scale + offset).astype(np.float32)


def test_frame_store_gives_the_stacked_vectors_of_each_clip(tmp_path, monkeypatch):
  """Vectors read back from the file equal stacked_vectors of the clip's log-mel (exact), in
  any batch shape, before and after the pages are handed back (a bound of one page here, so
  every release does); a clip of 4 frames is a one-line error naming it; close deletes the
  file."""
  monkeypatch.setattr(frame_store, 'RESIDENT_BYTES', 1)
  rng = np.random.default_rng(1)
  clips = [(_frames(rng, n), d) for n, d in ((9, 'source'), (5, 'source'), (12, 'target'))]
  store = _store(tmp_path, clips)
  expected = np.concatenate([autoencoder.stacked_vectors(f, 'x') for f, _ in clips])
  starts = store.vector_starts()
  assert len(starts) == 5 + 1 + 8 == len(expected)
  np.testing.assert_array_equal(store.vectors(starts), expected)
  store.release()
  assert store._touched == 0
  order = rng.permutation(len(starts))[:12].reshape(3, 4)
  np.testing.assert_array_equal(store.vectors(starts[order]), expected[order])
  np.testing.assert_array_equal(store.clip_vectors(2), expected[6:])
  assert store.domains == ['source', 'source', 'target']
  with pytest.raises(ValueError, match='^short.wav: too short for 5 stacked frames$'):
    store.append(_frames(rng, 4), 'source', 'short.wav')
  store.close()
  assert not (tmp_path / 'store.f32').exists()


def test_domain_moments_merged_in_blocks_equal_numpy_covariance(monkeypatch):
  """The error covariance is merged a block at a time; against np.cov of all rows at once
  (float64, blocks of 50 rows out of 333 in uneven pieces: rtol 1e-10)."""
  monkeypatch.setattr(autoencoder._DomainMoments, 'BLOCK', 50)
  rng = np.random.default_rng(3)
  rows = rng.normal(size=(333, 16)) * np.linspace(0.1, 9, 16) + 40
  moments = autoencoder._DomainMoments()
  for piece in np.split(rows, [7, 60, 61, 200, 290]):
    moments.add(piece.astype(np.float32))
  np.testing.assert_allclose(moments.covariance(), np.cov(rows.astype(np.float32), rowvar=False),
                             rtol=1e-10, atol=1e-10)


def test_chunked_epochs_equal_a_loop_of_single_steps(tmp_path):
  """train_autoencoder reads its batches a chunk of steps at a time from the store and runs
  each chunk as one lax.scan; a Python loop of the same Adam steps over the same batches (the
  official recipe: shuffled, last partial batch dropped) taken from the stacked vectors in
  memory must give the same model (float32: rtol 1e-5)."""
  rng = np.random.default_rng(0)
  clips = [(_frames(rng, n), d) for n, d in ((300, 'source'), (250, 'source'), (80, 'target'))]
  store = _store(tmp_path, clips)
  vectors = np.concatenate([autoencoder.stacked_vectors(f, 'x') for f, _ in clips])
  epochs, batch, lr, seed = 3, 64, 1e-3, 4
  # 9 steps an epoch in chunks of 4: two full chunks and one of a single step
  trained = autoencoder.train_autoencoder(store, epochs, batch, lr, seed, chunk_steps=4)

  variables = autoencoder.AutoEncoder().init(jax.random.PRNGKey(seed), jnp.zeros((2, 640)),
                                             train=False)
  params, stats = variables['params'], variables['batch_stats']
  opt_state = autoencoder._adam(lr).init(params)
  step = jax.jit(autoencoder._train_step, static_argnames=('learning_rate',))
  order_rng = np.random.default_rng(seed)
  for _ in range(epochs):
    order = order_rng.permutation(len(vectors))
    for start in range(0, len(order) - batch + 1, batch):  # 9 full batches, 42 rows dropped
      params, stats, opt_state, _ = step(params, stats, opt_state,
                                         jnp.asarray(vectors[order[start:start + batch]]),
                                         learning_rate=lr)
  looped = autoencoder.TrainedAE({'params': params, 'batch_stats': stats}, {})
  test = autoencoder.stacked_vectors(_frames(rng, 44), 'test')
  np.testing.assert_allclose(trained.errors(test), looped.errors(test), rtol=1e-5, atol=1e-4)
  untrained = autoencoder.TrainedAE(variables, {})
  assert not np.allclose(trained.errors(test), untrained.errors(test), atol=1e-2)
  store.close()


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


def test_ae_scores_are_the_mse_and_the_selective_mahalanobis_of_the_official_recipe(tmp_path):
  """TrainedAE.scores of a clip's vectors against NumPy: MSE the mean squared reconstruction
  error over its vectors and dimensions; selective Mahalanobis, as the official code computes
  it, the mean of the full n×n matrix E Σ_d⁺ Eᵀ of the clip's error vectors E, with Σ_d the
  (n − 1)-normalised covariance of the training errors of domain d alone (np.cov of all of
  them at once), minimum over the domains. The two domains' log-mels differ in spread, so one
  covariance for both would not match (float64 on the same errors: rtol 1e-6)."""
  rng = np.random.default_rng(2)
  scale = np.linspace(0.2, 5.0, 128)[:, None]  # target frames: another shape per bin
  clips = ([(_frames(rng, 400, 2.0, 5.0), 'source') for _ in range(3)]
           + [((rng.normal(size=(128, 350)) * scale + 5).astype(np.float32), 'target')
              for _ in range(3)])
  store = _store(tmp_path, clips)
  trained = autoencoder.train_autoencoder(store, epochs=1, batch_size=256, learning_rate=1e-3,
                                          seed=0)
  store.close()
  errors = {d: np.concatenate([trained.errors(autoencoder.stacked_vectors(f, 'x'))
                               for f, domain in clips if domain == d]).astype(np.float64)
            for d in ('source', 'target')}
  precisions = {d: np.linalg.pinv(np.cov(e, rowvar=False)) for d, e in errors.items()}
  assert not np.allclose(precisions['source'], precisions['target'], rtol=0.1)
  for frames in (clips[0][0][:, :11], clips[4][0][:, :13], _frames(rng, 9, 4.0, 5.0)):
    vectors = autoencoder.stacked_vectors(frames, 'x')
    e = trained.errors(vectors).astype(np.float64)
    mse, selective = trained.scores(vectors)
    assert mse == pytest.approx(np.mean(e**2), rel=1e-6)
    per_domain = [float(np.mean(e @ p @ e.T)) for p in precisions.values()]
    assert selective == pytest.approx(min(per_domain), rel=1e-6)
