"""The submitted systems (scoring/systems.py): each branch's calibrated score, its clip banks,
the fusion and the presets."""
import numpy as np

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
