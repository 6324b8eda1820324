"""The submitted systems (scoring/systems.py): each branch's calibrated score, its clip banks,
the fusion and the presets."""
import numpy as np
import pytest

from asd_jax.configs import default
from asd_jax.data.layout import Clip
from asd_jax.scoring import calibration, normal_reference, systems

MODE = 'two_channel'


def machine_clips(machine='fan', source=30, target=6, test_per_domain=8):
  """Clips of one machine type and section: normal training clips, then test clips."""
  plan = ([('train', 'source')] * source + [('train', 'target')] * target
          + [('test', 'source')] * test_per_domain + [('test', 'target')] * test_per_domain)
  return [Clip(f'{machine}_{i}.wav', 'dev', machine, '00', split, domain, 'normal', i, '', (), 2,
               16000, 16000) for i, (split, domain) in enumerate(plan)]


def test_beats_branch_adds_the_robust_z_of_each_clip_bank_distance():
  """With clip banks ('beats_<bank>') the BEATs score is the robust z (fitted on the reference
  clips) of z(embedding distance) + the z of each bank's distance, each as mahalanobis_scores
  and RobustZ give it on its own; without one it is the embedding's alone. A bank the registry
  does not name for the branch is not scored."""
  rng = np.random.default_rng(0)
  clips = machine_clips()
  embedding, level = rng.standard_normal((52, 10)), rng.standard_normal((52, 4))
  level[36:] += rng.uniform(0, 3, (16, 1))  # test clips louder by a varying amount
  logmel = rng.standard_normal((52, 6))
  config = default.get_config().score
  train, test = np.arange(36), np.arange(36, 52)
  keys = [(c.section, c.domain) for c in clips[:36]]

  def robust_z_scores(x):
    ref, scores = normal_reference.mahalanobis_scores(x[train], keys, x[test], ['00'] * 16,
                                                      config.mahalanobis_folds,
                                                      config.bank_calibration)
    z = calibration.RobustZ.fit(ref)
    return z(ref), z(scores)

  (e_ref, e_test), (l_ref, l_test), (m_ref, m_test) = (robust_z_scores(x)
                                                       for x in (embedding, level, logmel))
  alone = systems.SystemScorer(clips, {('beats', MODE): embedding}, config)
  np.testing.assert_allclose(alone.branch_z('beats', MODE, 'fan')[1], e_test, rtol=1e-9)
  with_level = systems.SystemScorer(clips, {('beats', MODE): embedding,
                                            ('beats_fbank_level', MODE): level,
                                            ('beats_patch_level', MODE): logmel}, config)
  z = calibration.RobustZ.fit(e_ref + l_ref)
  np.testing.assert_allclose(with_level.branch_z('beats', MODE, 'fan')[1], z(e_test + l_test),
                             rtol=1e-9)
  assert not np.allclose(e_test, z(e_test + l_test), atol=0.1)
  both = systems.SystemScorer(clips, {('beats', MODE): embedding,
                                      ('beats_fbank_level', MODE): level,
                                      ('beats_logmel_level', MODE): logmel}, config)
  z3 = calibration.RobustZ.fit(e_ref + l_ref + m_ref)
  np.testing.assert_allclose(both.branch_z('beats', MODE, 'fan')[1],
                             z3(e_test + l_test + m_test), rtol=1e-9)


def test_presets_are_the_reports_systems():
  """report §6: task2_1 fused with the near channel fed to both inputs, task2_2 fused on both
  channels, task2_3 fused with the higher BEATs weight, task2_4 BEATs alone; weights from the
  config (0.85, 0.95)."""
  got = [(s.name, s.channel_mode, s.beats_weight, s.branches)
         for s in systems.presets(default.get_config().score)]
  assert got == [('task2_1', 'left_duplicated', 0.85, ('beats', 'audiomae')),
                 ('task2_2', 'two_channel', 0.85, ('beats', 'audiomae')),
                 ('task2_3', 'two_channel', 0.95, ('beats', 'audiomae')),
                 ('task2_4', 'two_channel', 1.0, ('beats',))]


def _knn_brute_force(bank, queries, k, leave_one_out=False):
  """Mean cosine distance (1 − cos) to the k nearest bank rows, by sorting every distance."""
  unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
  distances = 1.0 - unit(queries) @ unit(bank).T
  if leave_one_out:
    np.fill_diagonal(distances, np.inf)
  return np.sort(distances, axis=1)[:, :k].mean(axis=1)


def test_each_system_fuses_the_robust_z_of_its_branches_in_its_channel_mode():
  """Every preset's test scores are w·z_BEATs + (1 − w)·z_AudioMAE of the embeddings of its
  own channel mode, each z fitted on that branch's normal reference scores (BEATs:
  out-of-fold Mahalanobis; AudioMAE: leave-one-out kNN, brute force), and its threshold the
  gamma fit of the fused reference scores. The two modes' embeddings differ, so a system that
  read the other mode would not match."""
  rng = np.random.default_rng(1)
  clips = machine_clips()
  embeddings = {}
  for mode in ('two_channel', 'left_duplicated'):
    embeddings['beats', mode] = rng.standard_normal((52, 8))
    embeddings['audiomae', mode] = rng.standard_normal((52, 6)) + 2.0
    for branch in ('beats', 'audiomae'):
      embeddings[branch, mode][36:] += rng.uniform(0, 2, (16, 1))  # anomalous-ish test clips
  config = default.get_config().score
  train, test = np.arange(36), np.arange(36, 52)
  keys = [(c.section, c.domain) for c in clips[:36]]

  def z(reference, scores):
    fitted = calibration.RobustZ.fit(reference)
    return fitted(reference), fitted(scores)

  scorer = systems.SystemScorer(clips, embeddings, config)
  for system in systems.presets(config):
    beats = embeddings['beats', system.channel_mode]
    z_ref, z_test = z(*normal_reference.mahalanobis_scores(
        beats[train], keys, beats[test], ['00'] * 16, config.mahalanobis_folds,
        config.bank_calibration))
    z_ref, z_test = z(z_ref, z_test)  # the branch's own robust z of its (here single) distance
    if system.beats_weight < 1.0:
      audiomae = embeddings['audiomae', system.channel_mode]
      a_ref, a_test = z(_knn_brute_force(audiomae[train], audiomae[train], 3, True),
                        _knn_brute_force(audiomae[train], audiomae[test], 3))
      w = system.beats_weight
      z_ref, z_test = w * z_ref + (1 - w) * a_ref, w * z_test + (1 - w) * a_test
    got = scorer.score(system, 'fan')
    np.testing.assert_allclose(got.test, z_test, rtol=1e-5, atol=1e-5, err_msg=system.name)
    np.testing.assert_allclose(got.reference, z_ref, rtol=1e-5, atol=1e-5, err_msg=system.name)
    assert got.threshold == pytest.approx(
        calibration.gamma_threshold(z_ref, config.decision_quantile), rel=1e-4, abs=1e-4)
