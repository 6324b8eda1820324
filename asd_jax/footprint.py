"""What a run will cost before it starts: its clips, the space it writes, an estimate of its time.

A dataset that would fill the disk halfway through, or outlast `--max_hours`, is refused in
one line before any stage works on it. Space is counted from what the stages write (the
embeddings, the baselines' log-mel cache, checkpoints, submissions); time is an estimate from
the per-unit costs of the default configuration measured on 2 CPU cores (AMD EPYC,
benchmarks/scale_run.py, docs/performance.md), with the encoders' matmuls counted from their
sizes at the rate the full-size encoders reached on those cores. On a faster machine or an
accelerator the run is quicker; the estimate is meant to say "minutes" or "days", not to be a stopwatch.
"""
from __future__ import annotations

import dataclasses
import os
import shutil

from asd_jax.audio.logmel import HOP, N_MELS
from asd_jax.baselines.frame_store import FRAMES
from asd_jax.io import WorkdirError
from asd_jax.model import build
from asd_jax.scoring import clip_banks
from asd_jax.train import pretrain

# Measured on 2 cores (AMD EPYC), default configuration, 5 120 four-second clips
# (benchmarks/scale_run.py at 4x; docs/performance.md "Scale"):
SECONDS_PER_AUDIO_SECOND = {  # work that is one pass over the audio, per clip-second
    'check audio': 0.0003,
    'embed': 0.0016,  # per branch and crop-second besides the encoder's FLOPs: decoding,
    #                   front end, clip banks, dispatch
    'baselines log-mel': 0.0015,  # per core
    'reference, score, evaluate': 0.00025,
}
SECONDS_PER_AE_VECTOR_EPOCH = 2.6e-5  # one AE training vector through one epoch, per core
# The encoders' FLOPs per second of work: the report's configuration with full-size random
# encoders (benchmarks/full_size_run.py, docs/performance.md) embedded a 10-s two-channel clip in
# ~4 s per branch (187 GFLOP) and took ~18 s a training step at batch 2 (~1.1 TFLOP) on these
# 2 cores: 50-60 GFLOP/s. The tiny default's matmuls are a small share of its embed time above.
ENCODER_FLOPS_PER_SECOND = 5e10
TRAIN_STEP_FACTOR = 3.0  # a training step's cost over a forward pass of the same crops
CHECKPOINT_ALLOWANCE = 300e6  # bytes a branch's checkpoints and pre-trained encoder may take


@dataclasses.dataclass(frozen=True)
class Footprint:
  clips: int
  audio_seconds: float
  data_bytes: int
  write_bytes: int  # the most the run holds in the workdir at once
  free_bytes: int  # on the workdir's disk, with what the run may replace there
  seconds: float  # estimated

  def line(self, workdir: str) -> str:
    return (f'{self.clips:,} clips, {self.audio_seconds / 3600:.1f} h of audio '
            f'({self.data_bytes / 1e9:.2f} GB): the run writes up to '
            f'{self.write_bytes / 1e9:.2f} GB to {workdir} ({self.free_bytes / 1e9:.1f} GB free) '
            f'and takes about {duration(self.seconds)} (an estimate at the rates of 2 CPU cores)')


def duration(seconds: float) -> str:
  if seconds < 90:
    return f'{seconds:.0f} s'
  if seconds < 5400:
    return f'{seconds / 60:.0f} min'
  return f'{seconds / 3600:.1f} h'


def encoder_macs_per_second(config, branch: str) -> float:
  """Multiply-adds of one encoder forward pass per second of one channel: patch tokens × the
  layers' weight matmuls plus attention (which grows with the crop)."""
  arch = build.architecture(config, branch)
  seconds = config.data.clip_seconds
  rows = arch.num_mel_bins // arch.patch_size
  if arch.kind == 'beats':
    tokens = rows * max(int(seconds * 100) // arch.patch_size, 1)
    layers, width, ffn = arch.encoder_layers, arch.encoder_embed_dim, arch.encoder_ffn_embed_dim
  else:
    tokens = arch.num_patches + 1
    layers, width, ffn = arch.depth, arch.embed_dim, arch.mlp_dim
  per_crop = layers * (tokens * (4 * width * width + 2 * width * ffn) + 2 * tokens * tokens * width)
  return per_crop / seconds


def estimate(config, manifest, workdir: str, reusable: int = 0) -> Footprint:
  """The run's footprint; `reusable` bytes already in the workdir count as free space."""
  clips = manifest.clips
  audio = sum(c.duration for c in clips)
  train = [c for c in clips if c.split == 'train']
  frames = sum(c.num_samples // HOP + 1 for c in train)
  vectors = sum(max(c.num_samples // HOP + 1 - FRAMES + 1, 0) for c in train)
  crop_seconds = config.data.clip_seconds * config.embed.windows
  write = CHECKPOINT_ALLOWANCE * len(config.branches)
  seconds = audio * (SECONDS_PER_AUDIO_SECOND['check audio']
                     + SECONDS_PER_AUDIO_SECOND['reference, score, evaluate'])
  for branch in config.branches:
    # FLOPs of one second of two-channel audio through the encoder (2 FLOPs a multiply-add)
    flops = 2 * 2 * encoder_macs_per_second(config, branch)
    seconds += len(clips) * crop_seconds * (SECONDS_PER_AUDIO_SECOND['embed']
                                            + flops / ENCODER_FLOPS_PER_SECOND)
    trained = config.train.steps * config.train.batch_size
    if pretrain.uses_pretraining(config, branch):
      trained += config.pretrain.steps * config.pretrain.batch_size
    seconds += (trained * config.data.clip_seconds * flops * TRAIN_STEP_FACTOR
                / ENCODER_FLOPS_PER_SECOND)
    banks = len(clip_banks.of_branch(config.score.clip_banks, branch))
    write += len(clips) * (config.model.embed_dim + 256 * banks) * 4 * 2  # float32, 2 modes
  if config.baseline.epochs:  # one machine type per core at once
    write += frames * N_MELS * 4  # the training log-mels wait on disk (frame_store.py)
    cores = config.baseline.concurrent_machines or os.cpu_count() or 1
    seconds += (audio * SECONDS_PER_AUDIO_SECOND['baselines log-mel']
                + vectors * config.baseline.epochs * SECONDS_PER_AE_VECTOR_EPOCH) / min(
                    cores, max(len(manifest.machines), 1))
  write += len(clips) * 200 * 8  # submission and evaluation rows of 8 systems
  data = sum(os.path.getsize(c.path) for c in clips)
  os.makedirs(workdir, exist_ok=True)
  return Footprint(len(clips), audio, data, int(write),
                   shutil.disk_usage(workdir).free + reusable, seconds)


def check(footprint: Footprint, workdir: str, max_hours: float = 0.0) -> None:
  """Raises WorkdirError (one line) when the run would not fit the disk or the time limit."""
  if footprint.write_bytes > footprint.free_bytes:
    raise WorkdirError(f'{workdir}: the run needs about {footprint.write_bytes / 1e9:.2f} GB '
                       f'and the disk has {footprint.free_bytes / 1e9:.2f} GB free '
                       f'({footprint.clips:,} clips); free space or use another --workdir')
  if max_hours and footprint.seconds > max_hours * 3600:
    raise WorkdirError(f'{footprint.clips:,} clips would take about '
                       f'{duration(footprint.seconds)}, over --max_hours={max_hours:g}; '
                       'raise it, or run on fewer clips or a faster machine')
