"""How much anomaly information the shipped encoders' frozen tokens carry, beside log-mel statistics.

python -m research.heldout.frozen_features --data_dir=D [--out=frozen_features.json]

Every feature is scored the same way: Ledoit-Wolf Mahalanobis to the section's source and target
banks of normal training clips, minimum taken, with raw distances ('none') and with per-bank
robust z ('robust_z', the default system's BEATs scoring); the official score is the harmonic
mean of every AUC (source), AUC (target) and pAUC. Features, all of the near channel:
- log-mel mean + std: the log-mel reference detector's features (64-ms frames);
- BEATs fbank mean + std: the same statistics of the encoders' own input, the 128-bin Kaldi
  fbank of 25-ms frames: does the front end's coarser frequency resolution lose information?
- BEATs / AudioMAE token mean, and mean + std: the shipped encoder without LoRA, fusion,
  projection or heads, over the embed stage's three 2-s crops (averaged): the mean is what the
  report's pooling sees (model.pooling='mean');
- BEATs token mean + std per frequency row: the same statistics over time only, one pair per row
  of 16-bin patches (what the default, model.pooling='frequency_rows', sees). BEATs has no
  absolute position embedding, so a mean over every token mixes the frequency bands; this row
  asks how much of the loss that mixing causes.
(Until 52a2239 it also scored the BEATs patch level, an option deleted since.)
No training and no choice tuned: it separates what the pre-trained priors know from what the
rest of the method adds (docs/heldout.md, "Why it loses").
"""
from __future__ import annotations

import json

import numpy as np
from absl import app, flags, logging

_DATA = flags.DEFINE_string('data_dir', None, 'a dataset in the DCASE layout, with test labels',
                            required=True)
_OUT = flags.DEFINE_string('out', 'frozen_features.json', 'JSON record of the scores')

CROP_SECONDS, CROPS = 2.0, 3


def clip_features(clip, beats, audiomae) -> dict[str, np.ndarray]:
  """{feature name: vector} of one clip's near channel."""
  from asd_jax.audio import SAMPLE_RATE
  from asd_jax.audio import fbank as fbank_lib
  from asd_jax.audio.logmel import frame_statistics
  from asd_jax.baselines.logmel_reference import clip_features as logmel_features
  from asd_jax.data.pipeline import fit_length, read_wave, window_offsets
  near = read_wave(clip.path, 'duplicate')[:1]
  crop = int(CROP_SECONDS * SAMPLE_RATE)
  crops = np.concatenate([fit_length(near, crop, offset)
                          for offset in window_offsets(near.shape[1], crop, CROPS)])
  fbank = np.asarray(fbank_lib.encoder_fbank(near, beats.preset, beats.config.num_mel_bins))[0]
  out = {'log-mel mean + std': logmel_features(clip.path),
         'BEATs fbank mean + std': frame_statistics(fbank.T)}
  beats_tokens = np.asarray(beats(crops))  # [crops, N, D]
  for name, tokens in (('BEATs', beats_tokens), ('AudioMAE', np.asarray(audiomae(crops)))):
    out[f'{name} token mean'] = tokens.mean(1).mean(0)
    out[f'{name} token mean + std'] = np.concatenate([tokens.mean(1), tokens.std(1)],
                                                     axis=1).mean(0)
  rows = beats.config.num_mel_bins // beats.config.input_patch_size
  grid = beats_tokens.reshape(len(crops), -1, rows, beats_tokens.shape[-1])  # n = t * rows + f
  out['BEATs token mean + std per frequency row'] = np.concatenate(
      [grid.mean(1), grid.std(1)], axis=-1).reshape(len(crops), -1).mean(0)
  return out


def official_score(features: np.ndarray, clips, calibration: str) -> float:
  """Official score of one feature [n clips, F] scored against its banks."""
  from asd_jax.evaluation import metrics
  from asd_jax.scoring.normal_reference import mahalanobis_scores
  results = []
  for machine in sorted({c.machine for c in clips}):
    train = [i for i, c in enumerate(clips) if c.machine == machine and c.split == 'train']
    test = [i for i, c in enumerate(clips) if c.machine == machine and c.split == 'test']
    scores = mahalanobis_scores(
        features[train], [(clips[i].section, clips[i].domain) for i in train], features[test],
        [clips[i].section for i in test], 5, calibration)[1]
    for section in sorted({clips[i].section for i in test}):
      rows = [j for j, i in enumerate(test) if clips[i].section == section]
      results.append(metrics.SectionResult(machine, section, metrics.section_metrics(
          [int(clips[test[j]].label == 'anomaly') for j in rows], scores[rows],
          [clips[test[j]].domain for j in rows])))
  return 100 * metrics.summarise(results)[metrics.OFFICIAL_SCORE]


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # checkpoint loading's INFO lines drown the table
  from tqdm import tqdm

  from asd_jax.data.layout import scan_dataset
  from asd_jax.encoders.encoder import load_encoder
  from asd_jax.pretrained import shipped_encoder
  clips = scan_dataset(_DATA.value).clips
  beats, audiomae = load_encoder(shipped_encoder('beats')), load_encoder(shipped_encoder('audiomae'))
  rows = [clip_features(c, beats, audiomae) for c in tqdm(clips, desc='features', unit='clip')]
  record = {'data_dir': _DATA.value, 'scores': {}}
  print(f'{"feature":28s} {"raw":>6s} {"robust_z":>9s}')
  for name in rows[0]:
    features = np.stack([r[name] for r in rows])
    record['scores'][name] = {c: official_score(features, clips, c) for c in ('none', 'robust_z')}
    print(f'{name:28s} {record["scores"][name]["none"]:6.1f} '
          f'{record["scores"][name]["robust_z"]:9.1f}')
  with open(_OUT.value, 'w') as f:
    json.dump(record, f, indent=1)


if __name__ == '__main__':
  app.run(main)
