"""The submitted systems (report §6) as presets over the two branches' calibrated scores."""
from __future__ import annotations

import dataclasses

import numpy as np

from asd_jax.model.asd_model import LEFT_DUPLICATED, TWO_CHANNEL
from asd_jax.scoring import clip_banks
from asd_jax.scoring.calibration import RobustZ, gamma_threshold
from asd_jax.scoring.normal_reference import (KnnReference, MahalanobisReference, fit_knn,
                                              fit_mahalanobis)

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


@dataclasses.dataclass(frozen=True)
class ScorePart:
  """One distance of a branch: to the normal reference of `features` (the branch's embedding or
  one of its clip banks, by clip_banks.bank_name), robust z of its reference scores (None: the
  raw kNN distance, as report §4 adds it)."""
  features: str
  reference: MahalanobisReference | KnnReference
  z: RobustZ | None

  def score(self, x: np.ndarray, sections: list) -> np.ndarray:
    distances = self.reference.score(x, sections)
    return distances if self.z is None else self.z(distances)


@dataclasses.dataclass(frozen=True)
class BranchReference:
  """A branch's calibrated score for one machine type and channel mode: its parts summed, then
  robust z of the sum over the normal reference clips."""
  parts: tuple[ScorePart, ...]
  z: RobustZ

  def score(self, features: dict, sections: list) -> np.ndarray:
    """features: {bank name: [Q, F]} of the clips (each part's own) -> [Q] z."""
    total = self.parts[0].score(features[self.parts[0].features], sections)
    for part in self.parts[1:]:
      total = total + part.score(features[part.features], sections)
    return self.z(total)


@dataclasses.dataclass(frozen=True)
class MachineReference:
  """What a system needs to score a new clip of one machine type: each branch's reference, its
  fusion weight (report §6: w·z_BEATs + (1 − w)·z_AudioMAE) and the decision threshold."""
  channel_mode: str
  branches: dict  # branch -> BranchReference, in fusion order
  weights: dict  # branch -> weight
  threshold: float

  def score(self, features: dict, sections: list) -> np.ndarray:
    """features: {bank name: [Q, F]} in the system's channel mode -> [Q] fused score."""
    return fuse({b: r.score(features, sections) for b, r in self.branches.items()}, self.weights)


def fuse(scores: dict, weights: dict) -> np.ndarray:
  """Σ weight · score over the branches, in their order."""
  total = 0.0
  for branch, values in scores.items():
    total = total + weights[branch] * values
  return total


@dataclasses.dataclass
class MachineScores:
  """Calibrated scores of one machine type: test clips, reference clips, threshold."""
  test: np.ndarray
  reference: np.ndarray
  threshold: float


class SystemScorer:
  """Fits each (branch, channel mode, machine) reference once and fuses per system.

  embeddings: {(bank, mode): [n_clips, E]} over `clips`, the manifest order.
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

  def branch_reference(self, branch: str, mode: str, machine: str
                       ) -> tuple[BranchReference, np.ndarray]:
    """(the branch's fitted reference, z of its reference clips): its embedding's distance,
    plus the robust z of each of its clip banks' distances where the embeddings hold them."""
    key = (branch, mode, machine)
    if key not in self._cache:
      train, _ = self.indices(machine)
      sections = [(self.clips[i].section, self.clips[i].domain) for i in train]
      parts, total = [], 0.0
      banks = [None] + [bank.name for bank in clip_banks.of_branch(clip_banks.REGISTRY, branch)]
      for bank in banks:
        name = clip_banks.bank_name(branch, bank)
        features = self.embeddings.get((name, mode))
        if features is None:
          continue
        if bank is None and BRANCH_SCORER[branch] == 'knn':
          ref, reference = fit_knn(features[train], self.config.knn_k)
          z = None
        else:
          ref, reference = fit_mahalanobis(features[train], sections,
                                           self.config.mahalanobis_folds,
                                           self.config.bank_calibration)
          z = RobustZ.fit(ref)
          ref = z(ref)
        parts.append(ScorePart(name, reference, z))
        total = ref if bank is None else total + ref
      z = RobustZ.fit(total)
      self._cache[key] = (BranchReference(tuple(parts), z), z(total))
    return self._cache[key]

  def branch_z(self, branch: str, mode: str, machine: str) -> tuple[np.ndarray, np.ndarray]:
    """(z of reference clips, z of test clips) of one branch."""
    reference, ref = self.branch_reference(branch, mode, machine)
    return ref, reference.score(self.features(mode, machine), self.sections(machine))

  def features(self, mode: str, machine: str) -> dict:
    """{bank name: [n_test, F]} of the machine type's test clips in one channel mode."""
    _, test = self.indices(machine)
    return {name: values[test] for (name, m), values in self.embeddings.items() if m == mode}

  def sections(self, machine: str) -> list[str]:
    return [self.clips[i].section for i in self.indices(machine)[1]]

  def machine_reference(self, system: System, machine: str) -> tuple[MachineReference,
                                                                     np.ndarray]:
    """(the system's reference for the machine type, its fused reference scores)."""
    w = system.beats_weight
    weights = {'beats': 1.0} if w >= 1.0 else {'beats': w, 'audiomae': 1 - w}
    branches, refs = {}, {}
    for branch in weights:
      branches[branch], refs[branch] = self.branch_reference(branch, system.channel_mode, machine)
    ref = fuse(refs, weights)
    threshold = gamma_threshold(ref, self.config.decision_quantile)
    return MachineReference(system.channel_mode, branches, weights, threshold), ref

  def score(self, system: System, machine: str) -> MachineScores:
    reference, ref = self.machine_reference(system, machine)
    test = reference.score(self.features(system.channel_mode, machine), self.sections(machine))
    return MachineScores(test, ref, reference.threshold)
