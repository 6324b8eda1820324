"""The submitted systems (report §6) as presets over the two branches' calibrated scores."""
from __future__ import annotations

import dataclasses

import numpy as np

from asd_jax.scoring.calibration import RobustZ, gamma_threshold
from asd_jax.scoring.normal_reference import knn_scores, mahalanobis_scores

TWO_CHANNEL, LEFT_DUPLICATED = 'two_channel', 'left_duplicated'


# BEATs outputs scored beside the embedding, each as its own Mahalanobis distance (robust z)
EXTRA_OUTPUTS = ('patch_level', 'patch_embedding', 'fbank_level', 'fbank_modulation',
                 'logmel_level')


def bank_name(branch: str, output: str = 'embedding') -> str:
  """The name of the reference bank of one model output: the branch's own name for its
  embedding, '<branch>_<output>' for another output (EXTRA_OUTPUTS)."""
  return branch if output == 'embedding' else f'{branch}_{output}'


@dataclasses.dataclass(frozen=True)
class System:
  name: str
  channel_mode: str  # two_channel, or left_duplicated (channel 0 fed to both inputs)
  beats_weight: float  # fused = w·z_BEATs + (1 − w)·z_AudioMAE; 1.0 = BEATs only

  @property
  def branches(self) -> tuple[str, ...]:
    return ('beats',) if self.beats_weight >= 1.0 else ('beats', 'audiomae')


def presets(score_config) -> list[System]:
  """task2_1..task2_4 with the weights of the config (defaults 0.85 and 0.95)."""
  w = score_config.beats_weight
  return [System('task2_1', LEFT_DUPLICATED, w), System('task2_2', TWO_CHANNEL, w),
          System('task2_3', TWO_CHANNEL, score_config.conservative_beats_weight),
          System('task2_4', TWO_CHANNEL, 1.0)]


@dataclasses.dataclass
class MachineScores:
  """Calibrated scores of one machine type: test clips, reference clips, threshold."""
  test: np.ndarray
  reference: np.ndarray
  threshold: float


class SystemScorer:
  """Computes branch scores once per (branch, channel mode, machine) and fuses per system.

  embeddings: {(branch, mode): [n_clips, E]} over `clips`, the manifest order.
  """

  def __init__(self, clips, embeddings: dict, score_config):
    self.clips = clips
    self.embeddings = embeddings
    self.config = score_config
    self._cache: dict = {}

  def available(self, system: System) -> bool:
    return all((b, system.channel_mode) in self.embeddings for b in system.branches)

  def indices(self, machine: str) -> tuple[np.ndarray, np.ndarray]:
    train = [i for i, c in enumerate(self.clips) if c.machine == machine and c.split == 'train']
    test = [i for i, c in enumerate(self.clips) if c.machine == machine and c.split == 'test']
    return np.asarray(train), np.asarray(test)

  def branch_z(self, branch: str, mode: str, machine: str) -> tuple[np.ndarray, np.ndarray]:
    """(z of reference clips, z of test clips) of one branch, robust z from the reference."""
    key = (branch, mode, machine)
    if key not in self._cache:
      train, test = self.indices(machine)
      if branch == 'beats':
        ref, scores = self.mahalanobis_z(self.embeddings[branch, mode], train, test)
        weight = self.config.extra_output_weight
        for output in EXTRA_OUTPUTS:  # the model's extra BEATs outputs: each one's z added
          bank = bank_name(branch, output)
          if (bank, mode) in self.embeddings:
            extra_ref, extra_scores = self.mahalanobis_z(self.embeddings[bank, mode], train, test)
            ref, scores = ref + weight * extra_ref, scores + weight * extra_scores
      else:
        emb = self.embeddings[branch, mode]
        ref, scores = knn_scores(emb[train], emb[test], self.config.knn_k)
      z = RobustZ.fit(ref)
      self._cache[key] = (z(ref), z(scores))
    return self._cache[key]

  def mahalanobis_z(self, features, train, test) -> tuple[np.ndarray, np.ndarray]:
    """(reference, test) robust z of the minimum Mahalanobis distance over a section's banks."""
    ref, scores = mahalanobis_scores(
        features[train], [(self.clips[i].section, self.clips[i].domain) for i in train],
        features[test], [self.clips[i].section for i in test], self.config.mahalanobis_folds,
        self.config.bank_calibration)
    z = RobustZ.fit(ref)
    return z(ref), z(scores)

  def score(self, system: System, machine: str) -> MachineScores:
    w = system.beats_weight
    ref, test = self.branch_z('beats', system.channel_mode, machine)
    if w < 1.0:
      ref_a, test_a = self.branch_z('audiomae', system.channel_mode, machine)
      ref, test = w * ref + (1 - w) * ref_a, w * test + (1 - w) * test_a
    return MachineScores(test, ref, gamma_threshold(ref, self.config.decision_quantile))
