"""The report's configuration (configs/dcase2026.py) end to end, with full-size random weights.

python -m benchmarks.full_size_run --workdir=W [--steps=2 --batch_size=2 ...]

1. Random BEATs (the released iter3+ cfg) and AudioMAE ViT-B/16 checkpoints in the official file
   layouts, converted with `python -m checkpoints_convert` (W/checkpoints/), as the tests make
   their small ones.
2. A small 10-s two-channel DCASE-layout dataset (W/data, the built-in generator).
3. `asd-jax run --config=configs/dcase2026.py` on it with the step counts overridden small
   (W/run), in its own process.
Prints the run's per-stage times (W/run/timings.json) and its peak resident memory, and writes
both to W/full_size_run.json. The weights are random, so the scores mean nothing: this checks
that the real configuration goes through and what it costs on this machine.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

from absl import app, flags, logging

_WORKDIR = flags.DEFINE_string('workdir', 'full_size_run', 'output folder')
_MACHINES = flags.DEFINE_list('machines', ['fan', 'valve'], 'machine types of the small set')
_TRAIN = flags.DEFINE_integer('source_train', 12, 'source-domain training clips per machine')
_TEST = flags.DEFINE_integer('test_per_group', 2, 'test clips per (domain, label)')
_STEPS = flags.DEFINE_integer('steps', 2, 'training steps per branch')
_BATCH = flags.DEFINE_integer('batch_size', 2, 'global training batch (clips)')


def make_checkpoints(folder: str) -> dict[str, str]:
  """Official-layout random files converted to W/checkpoints/<branch>; {branch: folder}."""
  from checkpoints_convert import official_layout
  from checkpoints_convert.__main__ import main as convert
  out = {}
  for branch in ('beats', 'audiomae'):
    converted = os.path.join(folder, branch)
    out[branch] = converted
    if os.path.isdir(converted):
      continue
    os.makedirs(folder, exist_ok=True)
    original = os.path.join(folder, f'{branch}_random_official.pt')
    if branch == 'beats':
      official_layout.save_beats(original, official_layout.BEATS_BASE_CFG,
                                 official_layout.beats_state_dict(official_layout.BEATS_BASE_CFG))
    else:
      official_layout.save_audiomae(original, official_layout.audiomae_state_dict())
    if convert([branch, '--input', original, '--output', converted]) != 0:
      raise SystemExit(f'{original}: conversion failed')
    os.remove(original)
  return out


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:  # Orbax's INFO lines would drown the figures
    logging.set_verbosity(logging.WARNING)
  from asd_jax.data import synthetic
  workdir = os.path.abspath(_WORKDIR.value)
  checkpoints = make_checkpoints(os.path.join(workdir, 'checkpoints'))
  data = os.path.join(workdir, 'data')
  if not os.path.isdir(data):
    synthetic.generate(data, synthetic.SynthConfig(
        machines=tuple(_MACHINES.value), clip_seconds=10.0, source_train=_TRAIN.value,
        target_train=2, test_per_group=_TEST.value))
  run_dir = os.path.join(workdir, 'run')
  steps = _STEPS.value
  command = [sys.executable, '-m', 'asd_jax.cli.main', 'run', f'--data_dir={data}',
             f'--workdir={run_dir}', '--config=configs/dcase2026.py',
             f'--config.beats.checkpoint={checkpoints["beats"]}',
             f'--config.audiomae.checkpoint={checkpoints["audiomae"]}',
             f'--config.train.steps={steps}', f'--config.train.batch_size={_BATCH.value}',
             f'--config.train.checkpoint_every={steps}', f'--config.train.eval_every={steps}',
             f'--config.train.log_every=1', f'--config.optim.warmup_steps=1',
             '--config.embed.batch_size=4', '--config.data.num_workers=2',
             '--config.baseline.epochs=2']
  print(' '.join(command), flush=True)
  start = time.perf_counter()
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  subprocess.run(command, check=True, cwd=repo)
  wall = time.perf_counter() - start
  peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
  with open(os.path.join(run_dir, 'timings.json')) as f:
    timings = json.load(f)
  record = {'stages_s': timings, 'wall_s': round(wall, 1), 'peak_rss_mb': round(peak_mb),
            'command': command[2:]}
  with open(os.path.join(workdir, 'full_size_run.json'), 'w') as f:
    json.dump(record, f, indent=2)
  print(json.dumps(record, indent=2))


if __name__ == '__main__':
  app.run(main)
