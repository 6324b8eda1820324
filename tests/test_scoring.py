"""Scoring against independent references: sklearn, scipy and brute-force NumPy."""
import numpy as np
import pytest
import scipy.stats
from sklearn.covariance import LedoitWolf

from asd_jax.scoring import calibration, distances, normal_reference
from asd_jax.scoring.ledoit_wolf import fit_ledoit_wolf


@pytest.mark.parametrize('n, d', [(200, 16), (30, 64), (5, 256)])  # n < d: singular S
def test_ledoit_wolf_equals_sklearn(n, d):
  x = np.random.default_rng(n).standard_normal((n, d)) @ np.diag(np.linspace(0.2, 3, d))
  ours = fit_ledoit_wolf(x)
  ref = LedoitWolf().fit(x)
  assert abs(ours.shrinkage - ref.shrinkage_) < 1e-10
  np.testing.assert_allclose(ours.mean, ref.location_, atol=1e-12)
  # float64 both; relative 1e-8 on the precision
  np.testing.assert_allclose(ours.precision, ref.precision_, rtol=1e-8,
                             atol=1e-8 * np.abs(ref.precision_).max())


def test_bank_of_one_clip_is_a_clear_error():
  with pytest.raises(ValueError, match='at least 2 embeddings'):
    fit_ledoit_wolf(np.ones((1, 8)))
  with pytest.raises(ValueError, match='at least 2 embeddings'):
    distances.knn_score(np.ones((3, 4)), np.ones((1, 4)), 3, exclude_self=True)


def test_mahalanobis_min_over_banks_matches_numpy():
  rng = np.random.default_rng(0)
  banks = [fit_ledoit_wolf(rng.standard_normal((40, 12)) + shift) for shift in (0.0, 3.0)]
  x = rng.standard_normal((25, 12)) + 1.5
  ours = distances.min_mahalanobis(x, banks)
  brute = np.array([[np.sqrt((v - b.mean) @ b.precision @ (v - b.mean)) for b in banks]
                    for v in x]).min(axis=1)
  np.testing.assert_allclose(ours, brute, rtol=1e-4)  # float32 on device


def brute_knn(queries, bank, k, exclude_self=False):
  out = []
  for i, q in enumerate(queries):
    d = [1 - q @ b / (np.linalg.norm(q) * np.linalg.norm(b)) for b in bank]
    if exclude_self:
      d = d[:i] + d[i + 1:]
    out.append(np.mean(sorted(d)[:min(k, len(d))]))
  return np.array(out)


def test_knn_matches_brute_force_with_ties_and_small_banks():
  rng = np.random.default_rng(1)
  bank = rng.standard_normal((20, 8))
  bank[5] = bank[4] * 2.0  # same direction: a cosine tie
  queries = rng.standard_normal((10, 8))
  queries[0] = bank[4]
  for k in (1, 3, 50):  # 50 > bank size: all neighbours
    np.testing.assert_allclose(distances.knn_score(queries, bank, k),
                               brute_knn(queries, bank, k), atol=1e-5)
  np.testing.assert_allclose(distances.knn_score(bank, bank, 3, exclude_self=True),
                             brute_knn(bank, bank, 3, exclude_self=True), atol=1e-5)


def test_out_of_fold_reference_scores_match_brute_force():
  rng = np.random.default_rng(2)
  train = np.concatenate([rng.standard_normal((20, 6)), rng.standard_normal((6, 6)) + 2])
  keys = [('00', 'source')] * 20 + [('00', 'target')] * 6
  test = rng.standard_normal((8, 6)) + 1
  ref, scores = normal_reference.mahalanobis_scores(train, keys, test, ['00'] * 8, folds=3)
  source, target = fit_ledoit_wolf(train[:20]), fit_ledoit_wolf(train[20:])
  np.testing.assert_allclose(scores, distances.min_mahalanobis(test, [source, target]),
                             rtol=1e-6)
  # clip 0 of the source bank is in fold 0: refit on source clips of folds 1 and 2
  rest = [i for i in range(20) if i % 3 != 0]
  expected = distances.min_mahalanobis(train[:1], [target, fit_ledoit_wolf(train[rest])])
  np.testing.assert_allclose(ref[0], expected[0], rtol=1e-6)
  # target clip 20 (bank position 0): refit on target positions 1, 2, 4, 5
  rest = [20 + i for i in range(6) if i % 3 != 0]
  expected = distances.min_mahalanobis(train[20:21], [source, fit_ledoit_wolf(train[rest])])
  np.testing.assert_allclose(ref[20], expected[0], rtol=1e-6)


def test_bank_calibration_matches_brute_force():
  """'robust_z': each bank's distances become robust z of its own out-of-fold distances."""
  rng = np.random.default_rng(3)
  train = np.concatenate([rng.standard_normal((20, 6)), 3 * rng.standard_normal((6, 6)) + 2])
  keys = [('00', 'source')] * 20 + [('00', 'target')] * 6
  test = rng.standard_normal((8, 6)) + 1
  ref, scores = normal_reference.mahalanobis_scores(train, keys, test, ['00'] * 8, folds=3,
                                                    bank_calibration='robust_z')

  def maha(x, rows):
    g = fit_ledoit_wolf(train[rows])
    return np.array([np.sqrt((v - g.mean) @ g.precision @ (v - g.mean)) for v in x])

  def out_of_fold(rows):
    own = np.empty(len(rows))
    for i, row in enumerate(rows):
      own[i] = maha(train[row:row + 1], [r for j, r in enumerate(rows) if j % 3 != i % 3])[0]
    return own

  banks = [list(range(20)), list(range(20, 26))]
  own = [out_of_fold(rows) for rows in banks]
  med = [np.median(o) for o in own]
  mad = [1.4826 * np.median(np.abs(o - m)) for o, m in zip(own, med)]
  z = [(maha(test, rows) - m) / s for rows, m, s in zip(banks, med, mad)]
  np.testing.assert_allclose(scores, np.minimum(*z), rtol=1e-4, atol=1e-4)  # float32 distances
  # a source clip: min(its own out-of-fold z, its z to the full target bank)
  expected = min((own[0][0] - med[0]) / mad[0], (maha(train[:1], banks[1])[0] - med[1]) / mad[1])
  np.testing.assert_allclose(ref[0], expected, rtol=1e-4, atol=1e-4)
  # the report's rule is the default and differs
  _, raw = normal_reference.mahalanobis_scores(train, keys, test, ['00'] * 8, folds=3)
  assert not np.allclose(raw, scores)


def test_bank_calibration_leaves_out_banks_too_small_to_calibrate():
  rng = np.random.default_rng(4)
  train = rng.standard_normal((12, 4))
  keys = [('00', 'source')] * 10 + [('00', 'target')] * 2  # 2 clips: no out-of-fold distances
  test = rng.standard_normal((3, 4))
  ref, scores = normal_reference.mahalanobis_scores(train, keys, test, ['00'] * 3,
                                                    bank_calibration='robust_z')
  only_source, _ = normal_reference.mahalanobis_scores(train[:10], keys[:10], test, ['00'] * 3,
                                                       bank_calibration='robust_z')
  np.testing.assert_allclose(ref[:10], only_source, rtol=1e-6)
  assert np.isfinite(ref).all() and np.isfinite(scores).all()
  with pytest.raises(ValueError, match='no normal bank with enough clips'):
    normal_reference.mahalanobis_scores(train[10:], keys[10:], test, ['00'] * 3,
                                        bank_calibration='robust_z')
  with pytest.raises(ValueError, match='bank_calibration must be one of'):
    normal_reference.mahalanobis_scores(train, keys, test, ['00'] * 3, bank_calibration='zscore')


def test_robust_z_uses_median_and_mad():
  reference = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
  z = calibration.RobustZ.fit(reference)
  assert z.median == 3.0 and z.scale == pytest.approx(1.4826 * 1.0)
  np.testing.assert_allclose(z([3.0, 4.4826]), [0.0, 1.0])
  constant = calibration.RobustZ.fit(np.array([2.0, 2.0, 2.0, 5.0]))  # MAD 0: the std instead
  assert constant.median == 2.0 and constant.scale == pytest.approx(np.std([2.0, 2.0, 2.0, 5.0]))
  np.testing.assert_allclose(constant([7.0]), [5.0 / np.std([2.0, 2.0, 2.0, 5.0])])
  flat = calibration.RobustZ.fit(np.array([4.0, 4.0, 4.0]))  # no spread at all: scale 1
  assert (flat.median, flat.scale) == (4.0, 1.0)


def test_gamma_threshold_is_the_fitted_quantile():
  reference = scipy.stats.gamma.rvs(2.0, scale=1.5, size=4000, random_state=0)
  threshold = calibration.gamma_threshold(reference, 0.9)
  assert threshold == pytest.approx(scipy.stats.gamma.ppf(0.9, 2.0, scale=1.5), rel=0.05)
  # Negative scores work too: the fit is on the scores shifted to start just above zero (the
  # minimum less 1e-3 of the range), the threshold shifted back, so a shift of the scores
  # moves it by exactly as much (float64: 1e-9).
  shifted = calibration.gamma_threshold(reference - 10.0, 0.9)
  assert shifted == pytest.approx(threshold - 10.0, abs=1e-9)
  shift = reference.min() - 1e-3 * (reference.max() - reference.min())
  shape, _, scale = scipy.stats.gamma.fit(reference - shift, floc=0.0)
  assert threshold == pytest.approx(scipy.stats.gamma.ppf(0.9, shape, scale=scale) + shift,
                                    rel=1e-12)
