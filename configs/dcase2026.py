"""Both branches of the report (BEATs main + AudioMAE auxiliary), as submitted (task2_1..4).

Every value and its source as in configs/dcase2026_beats.py.
Run: asd-jax run --data_dir=DCASE2026 --workdir=runs/dcase2026 --config=dcase2026
"""
from asd_jax.configs import dcase2026_beats


def get_config():
  config = dcase2026_beats.get_config()
  config.branches = ('beats', 'audiomae')  # report §6: task2_1..3 fuse both, task2_4 BEATs
  config.audiomae.checkpoint = 'checkpoints/audiomae'  # report §3.2
  return config
