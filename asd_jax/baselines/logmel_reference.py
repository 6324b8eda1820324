"""The log-mel reference detector: what a method must beat to show that it learned anything.

Per clip, the mean and the standard deviation over time of the near channel's log-mel (the
official baseline's front end: 128 bins, n_fft 1024, hop 512), 256 numbers; scored by the
Ledoit-Wolf Mahalanobis distance to the clip's section's source and target banks, minimum
taken, as the BEATs branch scores its embeddings (raw distances, out-of-fold reference scores).
No training, no tuning.
"""
from __future__ import annotations

import numpy as np

from asd_jax.audio.logmel import clip_log_mel, frame_statistics
from asd_jax.scoring.normal_reference import mahalanobis_scores


def clip_features(path: str, channel: int = 0, mono: str = 'duplicate') -> np.ndarray:
  """[256]: per-bin mean and standard deviation over time of the clip's log-mel."""
  return frame_statistics(clip_log_mel(path, channel, mono))


def reference_scores(train_clips, test_clips, channel: int = 0, mono: str = 'duplicate',
                     folds: int = 5, features=None) -> tuple[np.ndarray, np.ndarray]:
  """(out-of-fold scores of the normal training clips, test scores) of one machine type;
  clips are `layout.Clip`s (banks keyed by section and domain). `features(clips)` gives their
  [n, 256] `frame_statistics` where the caller has them already (the job keeps them from the
  baselines' log-mels)."""
  features = features or (lambda clips: np.stack([clip_features(c.path, channel, mono)
                                                  for c in clips]))
  return mahalanobis_scores(features(train_clips), [(c.section, c.domain) for c in train_clips],
                            features(test_clips), [c.section for c in test_clips], folds, 'none')
