"""The report's AudioMAE branch (auxiliary encoder) on the DCASE 2026 Task 2 data.

AudioMAE ViT-B/16 pretrained.pth converted with
  python -m checkpoints_convert audiomae --input pretrained.pth --output checkpoints/audiomae
Input 1024 fbank frames (10.24 s; 10-s clips are zero-padded in the log domain as the official
front end does), LoRA r=8 / alpha=16 / dropout 0.1 on q and v, gated fusion, 256-d embedding.
Hardware: one or more GPUs (global batch 32).
Run: asd-jax run --data_dir=DCASE2026 --workdir=runs/audiomae --config=configs/dcase2026_audiomae.py
"""
from configs import dcase2026_beats


def get_config():
  config = dcase2026_beats.get_config()
  config.branches = ('audiomae',)
  config.beats.checkpoint = ''
  config.audiomae.checkpoint = 'checkpoints/audiomae'  # converted official checkpoint
  return config
