"""`asd-jax run` at 1x, 4x and 16x a base dataset: time and peak memory per stage and per clip.

python -m benchmarks.scale_run --workdir=W [--scales=1,4,16] [--set=A] [--source_train=210 ...]

For each scale, the dataset (the built-in generator's families, or held-out set --set of
research/heldout) is written to W/data_<s>x with every clip count of the base multiplied by s,
and the default configuration runs on it in its own process (W/run_<s>x). Recorded per scale:
the clips and their size on disk, the run's wall time and peak resident memory (the run and
its worker processes, from wait4), and per stage the seconds (W/run_<s>x/timings.json) and the
job process's peak RSS during that stage (W/run_<s>x/memory.json). Written to
W/scale_run.json and printed as a markdown table. Existing data folders are reused; each run
starts from an empty workdir, so every stage is timed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

from absl import app, flags

from asd_jax.io import folder_bytes

from . import machine

_WORKDIR = flags.DEFINE_string('workdir', 'scale_run', 'output folder')
_SCALES = flags.DEFINE_list('scales', ['1', '4', '16'], 'multiples of the base size')
_SET = flags.DEFINE_string('set', '', 'held-out set of research/heldout/families.py (its '
                           'families and clip length); empty = the built-in families')
_SOURCE = flags.DEFINE_integer('source_train', 210, 'base source training clips per machine')
_TARGET = flags.DEFINE_integer('target_train', 10, 'base target training clips per machine')
_TEST = flags.DEFINE_integer('test_per_group', 25, 'base test clips per (domain, label)')
_SECONDS = flags.DEFINE_float('clip_seconds', 4.0, 'clip length (built-in families only)')
_EXTRA = flags.DEFINE_multi_string('run_flag', [], 'extra flag for `asd-jax run` '
                                   '(e.g. --run_flag=--config.baseline.epochs=5)')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_data(folder: str, scale: int) -> tuple[int, float]:
  """(clips, seconds spent) of the dataset at `scale`, written unless it is there."""
  from asd_jax.data import synthetic
  sizes = dict(source_train=_SOURCE.value * scale, target_train=_TARGET.value * scale,
               test_per_group=_TEST.value * scale)
  start = time.perf_counter()
  if os.path.isdir(folder):
    clips = sum(f.endswith('.wav') for _, _, files in os.walk(folder) for f in files)
    return clips, 0.0
  if _SET.value:
    from research.heldout import families
    config = dict(families.SETS[_SET.value], **sizes)
    clips = synthetic.generate(folder, synthetic.SynthConfig(**config),
                               families=families.REGISTRY)
  else:
    clips = synthetic.generate(folder, synthetic.SynthConfig(clip_seconds=_SECONDS.value,
                                                             **sizes))
  return clips, time.perf_counter() - start


def run_once(data: str, workdir: str) -> dict:
  """One `asd-jax run` in a child process: wall seconds and the peak RSS of the child and the
  processes it waited for (its Grain workers, its pools)."""
  shutil.rmtree(workdir, ignore_errors=True)
  command = [sys.executable, '-m', 'asd_jax.cli.main', 'run', f'--data_dir={data}',
             f'--workdir={workdir}', *_EXTRA.value]
  log = workdir + '.log'
  print(' '.join(command[2:]) + f'  (output: {log})', flush=True)
  start = time.perf_counter()
  with open(log, 'w') as out:
    child = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(child.pid, 0)
  wall = time.perf_counter() - start
  if os.waitstatus_to_exitcode(status) != 0:
    raise SystemExit(f'{workdir}: the run failed (exit {os.waitstatus_to_exitcode(status)}); '
                     f'see {log}')
  with open(os.path.join(workdir, 'timings.json')) as f:
    seconds = json.load(f)
  with open(os.path.join(workdir, 'memory.json')) as f:
    memory = json.load(f)
  # The job resets its high-water mark at each stage, which resets the kernel's figure behind
  # wait4 too: the run's own peak is its largest stage peak; wait4 adds its worker processes.
  peak = max(usage.ru_maxrss / 1024, *memory.values())
  return {'wall_s': round(wall, 1), 'peak_rss_mb': round(peak), 'stage_s': seconds,
          'stage_peak_rss_mb': memory}


def table(records: list[dict]) -> str:
  stages = [s for s in records[0]['stage_s'] if s != 'total']
  head = ['scale', 'clips', 'data GB', 'wall s', 'ms / clip', 'peak RSS MB',
          *(f'{s} s / MB' for s in stages)]
  rows = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in records:
    cells = [f"{r['scale']}x", f"{r['clips']:,}", f"{r['data_bytes'] / 1e9:.2f}",
             f"{r['wall_s']:.0f}", f"{1000 * r['wall_s'] / r['clips']:.1f}",
             f"{r['peak_rss_mb']:,}"]
    cells += [f"{r['stage_s'].get(s, '-')} / {r['stage_peak_rss_mb'].get(s, '-')}"
              for s in stages]
    rows.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(rows)


def main(argv):
  del argv
  workdir = os.path.abspath(_WORKDIR.value)
  os.makedirs(workdir, exist_ok=True)
  records = []
  for scale in map(int, _SCALES.value):
    data = os.path.join(workdir, f'data_{scale}x')
    clips, synth_s = write_data(data, scale)
    record = {'scale': scale, 'clips': clips, 'data_bytes': folder_bytes(data),
              'synth_s': round(synth_s, 1)}
    record.update(run_once(data, os.path.join(workdir, f'run_{scale}x')))
    records.append(record)
    print(json.dumps(record), flush=True)
  summary = {'cpu': machine.cpu_model(), 'cores': os.cpu_count(), 'set': _SET.value or 'built-in',
             'records': records}
  with open(os.path.join(workdir, 'scale_run.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  print(f"\n{summary['cpu']}, {summary['cores']} cores, {summary['set']} families\n")
  print(table(records))


if __name__ == '__main__':
  app.run(main)
