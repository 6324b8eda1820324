"""Both branches of the report (BEATs main + AudioMAE auxiliary), as submitted (task2_1..4).

Run: asd-jax run --data_dir=DCASE2026 --workdir=runs/dcase2026 --config=configs/dcase2026.py
"""
from configs import dcase2026_beats


def get_config():
  config = dcase2026_beats.get_config()
  config.branches = ('beats', 'audiomae')
  config.audiomae.checkpoint = 'checkpoints/audiomae'
  return config
