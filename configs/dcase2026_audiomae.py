"""The report's AudioMAE branch (auxiliary encoder) on the DCASE 2026 Task 2 data.

AudioMAE ViT-B/16 pretrained.pth converted with
  python -m checkpoints_convert audiomae --input pretrained.pth --output checkpoints/audiomae
Input 1024 fbank frames (10.24 s; 10-s clips are zero-padded in the log domain as the official
front end does); every other value and its source as in configs/dcase2026_beats.py.
Hardware: one or more GPUs or a TPU slice (global batch 32).
Run: asd-jax run --data_dir=DCASE2026 --workdir=runs/audiomae --config=dcase2026_audiomae
"""
from asd_jax.configs import dcase2026_beats


def get_config():
  config = dcase2026_beats.get_config()
  config.branches = ('audiomae',)  # report §3.2: AudioMAE is the auxiliary encoder
  config.beats.checkpoint = ''
  config.audiomae.checkpoint = 'checkpoints/audiomae'  # report §3.2: official pre-trained AudioMAE
  return config
