"""The report's BEATs branch (main encoder) on the DCASE 2026 Task 2 data.

BEATs iter3+ AS2M converted with
  python -m checkpoints_convert beats --input BEATs_iter3_plus_AS2M.pt --output checkpoints/beats
Hardware: one or more GPUs or a TPU slice (global batch 32, split over the devices); ~90 M
frozen parameters.
Run: asd-jax run --data_dir=DCASE2026 --workdir=runs/beats --config=dcase2026_beats

Every value says where it comes from: "report" (the technical report, section given),
"DESIGN" (the official baselines' and reference code's conventions the port follows where the
report is silent), "measured" (with the figure, docs/), or "not measured" (a choice nobody has
checked on DCASE data; change it freely).
"""
from asd_jax.configs import default


def get_config():
  config = default.get_config()
  config.branches = ('beats',)  # report §3.2: BEATs is the main encoder
  config.beats.checkpoint = 'checkpoints/beats'  # report §3.2: the official pre-trained BEATs
  config.pretrain.steps = 0  # report §3.2: the front end is pre-trained, not trained here

  # --- data ---
  config.data.clip_seconds = 10.0  # DESIGN §7 (report §3.1: "a fixed duration", not given)
  config.data.num_workers = 8  # not measured (enough to keep one GPU fed is expected)
  config.data.mono = 'error'  # report §1: the 2026 clips are two-channel
  config.data.swap_prob = 0.2  # not measured on DCASE (report §3.4: swap used, p not given;
  #                              DESIGN's 0.5 lets the gate drift on the built-in data)
  config.data.gain_db = 6.0  # DESIGN §7 (report §3.4: gain perturbation, range not given)
  config.data.channel_dropout_prob = 0.1  # DESIGN §7 (report §3.4: used, p not given)
  config.data.holdout_every = 10  # not measured (monitoring only; no effect on the model)

  # --- model ---
  config.model.embed_dim = 256  # report §3.1
  config.model.pooling = 'mean'  # DESIGN §7 (report §3.1: "temporal pooling")
  config.model.gate_bias_init = 1.0  # report §3.4
  config.model.dtype = 'float32'  # not measured (bfloat16: +26 % BEATs forward on an H100,
  #                                 docs/performance.md; its effect on scores not measured)
  # measured: 33.0 GB -> 19.4 GB of training temporaries at batch 32 x 2 ch x 10 s
  # (docs/performance.md), so batch 32 fits a 40 GB device; the update is unchanged.
  config.model.remat = 'attention'
  config.lora.rank = 8  # report §3.3
  config.lora.alpha = 16.0  # report §3.3
  config.lora.dropout = 0.1  # report §3.3
  config.lora.targets = ('q', 'v')  # DESIGN §7 (report §3.3: "LoRA adapters", layers not given)
  config.arcface.scale = 30.0  # DESIGN §7 (report §3.5: s not given)
  config.arcface.margin = 0.5  # DESIGN §7 (report §3.5: m not given)

  # --- optimisation (report silent on all of it) ---
  config.optim.learning_rate = 1e-4  # not measured
  config.optim.warmup_steps = 500  # not measured
  config.optim.weight_decay = 1e-4  # not measured
  config.optim.grad_clip_norm = 1.0  # not measured
  config.train.batch_size = 32  # not measured (fits one 40 GB device with remat, above)
  config.train.steps = 6000  # not measured
  config.train.log_every = 50
  config.train.eval_every = 1000
  config.train.checkpoint_every = 1000
  config.train.keep_checkpoints = 2

  # --- embedding and scoring ---
  config.embed.batch_size = 64  # not measured (throughput only)
  config.embed.windows = 1  # DESIGN §7: the 10-s input is the whole clip, centred
  config.score.knn_k = 3  # report §4.2
  config.score.beats_weight = 0.85  # report abstract (task2_1, task2_2)
  config.score.conservative_beats_weight = 0.95  # DESIGN §8 (report abstract: "higher", no value)
  config.score.mahalanobis_folds = 5  # not measured (out-of-fold reference scores, DESIGN §8)
  config.score.bank_calibration = 'none'  # report §4.1: min over raw bank distances
  config.score.clip_banks = ()  # report §4.1: one Mahalanobis distance, on the embedding
  config.score.decision_quantile = 0.9  # DESIGN §6: the official baseline's gamma threshold

  # --- official autoencoder baseline (DESIGN §6: the official recipe) ---
  config.baseline.channel = 0  # not measured (the near field; the official baseline is mono)
  config.baseline.epochs = 20  # not measured (the official recipe's count is not in DESIGN)
  config.baseline.batch_size = 256  # DESIGN §6
  config.baseline.learning_rate = 1e-3  # DESIGN §6
  config.baseline.concurrent_machines = 0  # not measured (throughput only: one per core)
  return config
