"""The submitted systems (report §6) as presets over the two branches' calibrated scores."""
from __future__ import annotations

import dataclasses

import numpy as np

from asd_jax.model.asd_model import LEFT_DUPLICATED, TWO_CHANNEL
from asd_jax.scoring import clip_banks
from asd_jax.scoring.calibration import RobustZ, gamma_threshold
from asd_jax.scoring.normal_reference import knn_scores, mahalanobis_scores

# How each branch scores its embedding (report §4): Ledoit-Wolf Mahalanobis to the section's
# source and target banks, min taken; mean cosine distance to the k nearest of one global bank.
BRANCH_SCORER = {'beats': 'mahalanobis', 'audiomae': 'knn'}


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
    """(z of reference clips, z of test clips) of one branch, robust z from the reference: its
    embedding's scores, plus the robust z of each of its clip banks' distances where the
    embeddings hold them."""
    key = (branch, mode, machine)
    if key not in self._cache:
      train, test = self.indices(machine)
      emb = self.embeddings[branch, mode]
      if BRANCH_SCORER[branch] == 'mahalanobis':
        ref, scores = self.mahalanobis_z(emb, train, test)
      else:
        ref, scores = knn_scores(emb[train], emb[test], self.config.knn_k)
      for bank in clip_banks.of_branch(clip_banks.REGISTRY, branch):
        features = self.embeddings.get((clip_banks.bank_name(branch, bank.name), mode))
        if features is not None:
          bank_ref, bank_scores = self.mahalanobis_z(features, train, test)
          ref, scores = ref + bank_ref, scores + bank_scores
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
