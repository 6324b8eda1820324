"""A rerun never serves stale results: each change redoes exactly the stages that read it, and
the outputs equal a fresh workdir's; kills, a second run, a bad workdir, `asd-jax status`."""
import glob
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import soundfile as sf

from asd_jax import job
from asd_jax import workdir as workdir_lib
from asd_jax.data import synthetic
from asd_jax.io import WorkdirError
from tests.test_run import tiny_config

STAGES = ['check audio', 'train beats', 'train audiomae', 'embed beats', 'embed audiomae',
          'baselines', 'reference', 'score', 'evaluate']
VERDICT = re.compile(r'^(' + '|'.join(STAGES) + r'): (done|redo|to do|continue|resume)',
                     re.MULTILINE)


def small_config():
  """Both branches from the shipped encoders, two LoRA steps, one crop: seconds a run."""
  config = tiny_config(shipped_encoders=True)
  config.train.steps = 2
  config.train.eval_every = config.train.checkpoint_every = 2
  config.embed.windows = 1
  config.baseline.epochs = 1
  return config


def make_data(root, seed=0):
  synthetic.generate(root, synthetic.SynthConfig(machines=('fan', 'valve'), clip_seconds=1.0,
                                                 source_train=6, target_train=2,
                                                 test_per_group=2, seed=seed))
  return root


def outputs(workdir):
  """{relative path: bytes} of every submission CSV and the results table."""
  files = glob.glob(os.path.join(workdir, 'submission', '*', '*.csv'))
  files.append(os.path.join(workdir, 'results.csv'))
  return {os.path.relpath(f, workdir): open(f, 'rb').read() for f in files}


def verdicts(out):
  return dict(VERDICT.findall(out))


def perturbed_encoder(branch, folder):
  """A copy of the shipped encoder with the same shapes and other values."""
  from asd_jax.encoders.checkpoint import load_converted, save_converted
  from asd_jax.pretrained import shipped_encoder
  params, arch = load_converted(shipped_encoder(branch))
  import jax
  save_converted(folder, jax.tree.map(lambda x: x * 1.01, params), arch)
  return folder


def beats_only():
  config = small_config()
  config.branches = ('beats',)
  return config


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  return make_data(str(tmp_path_factory.mktemp('rerun') / 'data'))


@pytest.fixture(scope='module')
def base(data):
  """A finished workdir of small_config() (both branches)."""
  workdir = os.path.join(os.path.dirname(data), 'base')
  job.run_job(small_config(), data, workdir, progress=False)
  return workdir


def change_of(name, config, root, data):
  """(config, data folder) with one change of the matrix."""
  if name == 'learning rate':
    config.optim.learning_rate = 0.01
  elif name == 'LoRA rank':
    config.lora.rank = 2
  elif name == 'LoRA targets':
    config.lora.targets = ('q', 'k', 'v')
  elif name == 'encoder checkpoint':
    config.beats.checkpoint = perturbed_encoder('beats', str(root / 'beats_other'))
  elif name == 'model dtype':
    config.model.dtype = 'bfloat16'
  elif name == 'another data folder':
    data = str(root / 'data2')
    if not os.path.exists(data):
      make_data(data, seed=1)
  elif name == 'decision quantile':
    config.score.decision_quantile = 0.8
  elif name == 'fusion weight':
    config.score.beats_weight = 0.7
  elif name == 'baseline channel':
    config.baseline.channel = 1
  elif name == 'baseline epochs':
    config.baseline.epochs = 2
  return config, data


def test_only_more_steps_continues_the_same_training(base, data, tmp_path, capsys):
  workdir = str(tmp_path / 'w')
  shutil.copytree(base, workdir)
  config = small_config()
  config.train.steps = 3
  capsys.readouterr()
  job.run_job(config, data, workdir, progress=False)
  out = capsys.readouterr().out
  assert 'train beats: continue (train.steps 2 -> 3)' in out
  assert 'beats: trained to step 3 (resumed from step 2)' in out
  assert 'baselines: done, unchanged' in out and 'embed beats: redo (train beats was redone' in out
  assert not os.path.exists(os.path.join(workdir, 'superseded'))
  with open(os.path.join(workdir, 'config.json')) as f:
    assert '"steps": 3' in f.read()


def test_a_dataset_moved_with_its_times_is_the_same_input(base, data, tmp_path, capsys):
  """A job's node-local copy of the data (times kept) reuses every stage; a clip rewritten
  there is new data."""
  workdir, moved = str(tmp_path / 'w'), str(tmp_path / 'elsewhere' / 'data')
  shutil.copytree(base, workdir)
  shutil.copytree(data, moved)  # copy2: modification times kept
  capsys.readouterr()
  job.run_job(small_config(), moved, workdir, progress=False)
  assert verdicts(capsys.readouterr().out) == {s: 'done' for s in STAGES}
  clip = sorted(glob.glob(os.path.join(moved, 'dev_data', 'raw', 'fan', 'train', '*.wav')))[0]
  os.utime(clip, ns=(0, 0))
  status = job.Job(small_config(), workdir, progress=False)
  rows = dict(status.status(status.scanned_dataset(moved)))
  assert rows['train beats'].startswith('stale: redo (clips 16 clips #')


def cli(*args, **kwargs):
  return subprocess.run([sys.executable, '-m', 'asd_jax.cli.main', *args], capture_output=True,
                        text=True, **kwargs)


def test_status_tells_done_stale_and_missing(base, data, tmp_path):
  base_workdir = base
  config_file = tmp_path / 'small.py'
  config_file.write_text('from tests.test_rerun import small_config as get_config\n')
  env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  fresh = cli('status', f'--workdir={tmp_path}/none', f'--data_dir={data}',
              f'--config={config_file}', env=env)
  assert fresh.returncode == 0, fresh.stderr
  assert re.findall(r'^(.+?)\s{2,}(\S+)', fresh.stdout, re.MULTILINE) == [
      (s, 'missing') for s in STAGES]
  done = cli('status', f'--workdir={base_workdir}', f'--data_dir={data}',
             f'--config={config_file}', env=env)
  assert done.returncode == 0, done.stderr
  assert re.findall(r'^(.+?)\s{2,}(\S+)', done.stdout, re.MULTILINE) == [
      (s, 'done') for s in STAGES]
  stale = cli('status', f'--workdir={base_workdir}', f'--data_dir={data}',
              f'--config={config_file}', '--config.score.beats_weight=0.7', env=env)
  lines = dict(re.findall(r'^(.+?)\s{2,}(.+)$', stale.stdout, re.MULTILINE))
  assert lines['train beats'] == 'done' and lines['baselines'] == 'done'
  assert lines['score'] == 'stale: redo (score.beats_weight 0.85 -> 0.7)'
  assert lines['evaluate'] == 'stale: score will be redone'


def test_second_run_on_a_held_workdir_stops_in_one_line(tmp_path):
  workdir = workdir_lib.prepare(str(tmp_path / 'w'))
  with workdir_lib.claimed(workdir):
    with pytest.raises(WorkdirError, match=f'is in use by process {os.getpid()}'):
      with workdir_lib.claimed(workdir):
        pass
    start = time.monotonic()
    other = cli('run', f'--workdir={workdir}', '--config.baseline.epochs=0')
    assert time.monotonic() - start < 60
  assert other.returncode == 1
  line = other.stderr.strip()
  assert line.startswith(f'error: {workdir} is in use by process {os.getpid()} (')
  assert line.endswith('; wait for it to finish or use another --workdir')
  assert len(other.stderr.strip().splitlines()) == 1
  with open(os.path.join(workdir, '.lock'), 'w') as f:
    f.write('process 999999 (left by a killed run)')  # no flock: the lock is free to take
  with workdir_lib.claimed(workdir):
    pass


@pytest.mark.parametrize('workdir', ['/dev/null/x', '/proc/asd-jax'])
def test_a_workdir_that_cannot_be_written_is_one_line(workdir):
  with pytest.raises(WorkdirError, match=f'--workdir={workdir}: cannot be created or written'):
    workdir_lib.prepare(workdir)
  result = cli('run', f'--workdir={workdir}')
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [
      f'error: --workdir={workdir}: cannot be created or written '
      f'({"Not a directory" if workdir.startswith("/dev") else "No such file or directory"})']


def test_killed_stages_rerun_to_the_uninterrupted_outputs(base, data, tmp_path):
  """kill -9 as the embed stage starts, then as the baselines stage starts, each time rerun;
  the end equals the uninterrupted run `base`. (A kill inside training resumes from its last
  checkpoint: tests/test_train.py.)"""
  config_file = tmp_path / 'small.py'
  config_file.write_text('from tests.test_rerun import small_config as get_config\n')
  env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  workdir = str(tmp_path / 'killed')
  command = [sys.executable, '-m', 'asd_jax.cli.main', 'run', f'--data_dir={data}',
             f'--workdir={workdir}', f'--config={config_file}']

  def run_until(stage):
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    said = []
    for line in proc.stdout:
      said.append(line)
      if line.startswith(f'== {stage}'):
        os.killpg(proc.pid, signal.SIGKILL)
        break
    proc.wait()
    return ''.join(said)

  run_until('embed')
  said = run_until('baselines')
  assert 'train beats: done, unchanged' in said and 'embed beats: to do' in said, said
  finished = subprocess.run(command, env=env, capture_output=True, text=True)
  assert finished.returncode == 0, finished.stderr
  assert 'embed beats: done, unchanged' in finished.stdout
  assert 'baselines: to do' in finished.stdout
  got, want = outputs(workdir), outputs(base)
  assert sorted(got) == sorted(want)
  for path in want:
    assert got[path] == want[path], path


TRAINED = {'check audio', 'train beats', 'embed beats'}
# change -> the stages a rerun must skip (all the others are redone)
BOTH_BRANCHES = {
    'encoder checkpoint': {'check audio', 'train audiomae', 'embed audiomae', 'baselines',
                           'reference'},
    'fusion weight': TRAINED | {'train audiomae', 'embed audiomae', 'baselines', 'reference'},
}
BEATS_ONLY = {
    'learning rate': {'check audio', 'baselines', 'reference'},
    'another data folder': set(),
    'decision quantile': TRAINED,
    'baseline channel': TRAINED | {'score'},
    'baseline epochs': TRAINED | {'reference', 'score'},
    'one test clip rewritten': {'train beats'},  # training reads the training clips only
}
# Changes that redo the same stages as 'learning rate', whose rerun-equals-fresh check stands
# for theirs: only their verdicts are checked, by `asd-jax status`'s planning (nothing runs).
PLANNED_LIKE_LEARNING_RATE = ('LoRA rank', 'LoRA targets', 'model dtype')


def rerun_against_fresh(matrix, make_config, base_workdir, data, capsys):
  """Each change: a copy of the finished workdir rerun with it, and a fresh workdir run with
  it; returns {change: [stages redone]} after checking both."""
  root = pathlib.Path(os.path.dirname(data))
  report = {}
  for name, skipped in matrix.items():
    if name == 'one test clip rewritten':  # last: it changes the shared data in place
      clip = sorted(glob.glob(os.path.join(data, 'dev_data/raw/fan/test/*.wav')))[0]
      wave, rate = sf.read(clip)
      sf.write(clip, wave[::-1].copy(), rate, subtype='PCM_16')
    config, data_dir = change_of(name, make_config(), root, data)
    rerun = str(root / f'rerun {name}')
    shutil.copytree(base_workdir, rerun)
    capsys.readouterr()
    job.run_job(config, data_dir, rerun, progress=False)
    out = capsys.readouterr().out
    said = verdicts(out)
    fresh = str(root / f'fresh {name}')
    job.run_job(config, data_dir, fresh, progress=False)
    stages = [s for s in STAGES if s.split()[-1] in config.branches or len(s.split()) == 1
              or s == 'check audio']
    assert sorted(said) == sorted(stages), (name, said)
    assert {s for s, v in said.items() if v == 'done'} == skipped, (name, said)
    got, want = outputs(rerun), outputs(fresh)
    assert sorted(got) == sorted(want) and len(got) >= 13, name
    for path in want:
      assert got[path] == want[path], (name, path)
    report[name] = [s for s in stages if said[s] != 'done']
    if name == 'learning rate':
      assert 'train beats: redo (optim.learning_rate 0.001 -> 0.01)' in out
      assert 'embed beats: redo (train beats was redone' in out
      assert os.listdir(os.path.join(rerun, 'superseded')) == ['train_beats-1']
    shutil.rmtree(fresh)
    shutil.rmtree(rerun)
  return report


def test_changes_that_need_both_branches(base, data, capsys):
  report = rerun_against_fresh(BOTH_BRANCHES, small_config, base, data, capsys)
  print(report)


def done_by_status(config, workdir, data):
  """The stages `asd-jax status` finds done in `workdir` for `config` and `data`."""
  status = job.Job(config, workdir, progress=False)
  return {name for name, state in status.status(status.scanned_dataset(data)) if state == 'done'}


def test_each_change_redoes_what_read_it_and_equals_a_fresh_run(data, capsys):
  """An unchanged BEATs-only workdir is all done (it has no main-system plots); the changes
  are checked as the matrices above say. Last in this file: its final change rewrites a clip
  of the shared data."""
  workdir = os.path.join(os.path.dirname(data), 'base beats')
  job.run_job(beats_only(), data, workdir, progress=False)
  root = pathlib.Path(os.path.dirname(data))
  for name in PLANNED_LIKE_LEARNING_RATE:
    config, data_dir = change_of(name, beats_only(), root, data)
    assert done_by_status(config, workdir, data_dir) == BEATS_ONLY['learning rate'], name
  assert done_by_status(beats_only(), workdir, data) == set(STAGES) - {'train audiomae',
                                                                        'embed audiomae'}
  report = rerun_against_fresh(BEATS_ONLY, beats_only, workdir, data, capsys)
  print(report)
