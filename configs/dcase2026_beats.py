"""The report's BEATs branch (main encoder) on the DCASE 2026 Task 2 data.

BEATs iter3+ AS2M converted with
  python -m checkpoints_convert beats --input BEATs_iter3_plus_AS2M.pt --output checkpoints/beats
10-s two-channel clips, LoRA r=8 / alpha=16 / dropout 0.1 on q and v of every layer, gated fusion,
256-d embedding, ArcFace (s=30, m=0.5) on attributes and domains.
Hardware: one or more GPUs (global batch 32, split over the devices); ~90 M frozen parameters.
Run: asd-jax run --data_dir=DCASE2026 --workdir=runs/beats --config=configs/dcase2026_beats.py
"""
from configs import default


def get_config():
  config = default.get_config()
  config.branches = ('beats',)
  config.beats.checkpoint = 'checkpoints/beats'  # converted official checkpoint
  config.data.clip_seconds = 10.0
  config.data.num_workers = 8
  config.train.batch_size = 32
  config.train.steps = 6000
  config.train.log_every = 50
  config.train.eval_every = 1000
  config.train.checkpoint_every = 1000
  config.optim.learning_rate = 1e-4
  config.optim.warmup_steps = 500
  config.embed.batch_size = 64
  # Batch 32 x 2 channels x 10 s keeps 52 GB of BEATs activations for the backward pass on one
  # device; recomputing the attention scores brings that to 23 GB (XLA's memory analysis).
  config.model.remat = 'attention'
  config.embed.windows = 1  # the 10-s input is the whole clip
  config.score.bank_calibration = 'none'  # the report's rule: min over raw bank distances
  return config
