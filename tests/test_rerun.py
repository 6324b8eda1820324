"""A rerun never serves stale results: each change redoes exactly the stages that read it, and
the outputs equal a fresh workdir's; kills, a second run, a bad workdir, `asd-jax status`."""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from asd_jax import job
from asd_jax import workdir as workdir_lib
from asd_jax.data import synthetic
from asd_jax.io import WorkdirError
from tests.test_run import tiny_config

STAGES = ['check audio', 'train beats', 'train audiomae', 'embed beats', 'embed audiomae',
          'baselines', 'reference', 'score', 'evaluate']
TRAINED = {'check audio', 'train beats', 'train audiomae', 'embed beats', 'embed audiomae'}
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


@pytest.fixture(scope='module')
def base(tmp_path_factory):
  root = tmp_path_factory.mktemp('rerun')
  data = make_data(str(root / 'data'))
  workdir = str(root / 'base')
  job.run_job(small_config(), data, workdir, progress=False)
  return root, data, workdir


def change_of(name, root, data):
  """(config, data folder) of one change of the matrix."""
  config = small_config()
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


# change -> the stages a rerun must skip (all the others are redone)
MATRIX = {
    'learning rate': {'check audio', 'baselines', 'reference'},
    'LoRA rank': {'check audio', 'baselines', 'reference'},
    'LoRA targets': {'check audio', 'baselines', 'reference'},
    'encoder checkpoint': {'check audio', 'train audiomae', 'embed audiomae', 'baselines',
                           'reference'},
    'model dtype': {'check audio', 'baselines', 'reference'},
    'another data folder': set(),
    'decision quantile': TRAINED,
    'fusion weight': TRAINED | {'baselines', 'reference'},
    'baseline channel': TRAINED | {'score'},
    'baseline epochs': TRAINED | {'reference', 'score'},
    'one test clip rewritten': {'train beats', 'train audiomae'},  # training reads train clips
}


def test_a_rerun_names_what_changed_and_moves_old_checkpoints_aside(base, tmp_path, capsys):
  _, data, base_workdir = base
  workdir = str(tmp_path / 'w')
  shutil.copytree(base_workdir, workdir)
  config = small_config()
  config.optim.learning_rate = 0.5
  config.train.steps = 3
  capsys.readouterr()
  job.run_job(config, data, workdir, progress=False)
  out = capsys.readouterr().out
  assert 'train beats: redo (optim.learning_rate 0.001 -> 0.5; train.steps 2 -> 3)' in out
  assert 'embed beats: redo (train beats was redone' in out
  assert 'baselines: done, unchanged' in out
  assert os.listdir(os.path.join(workdir, 'superseded')) == ['train_audiomae-1', 'train_beats-1']
  config.train.steps = 5  # only more steps: the same run goes on
  job.run_job(config, data, workdir, progress=False)
  out = capsys.readouterr().out
  assert 'train beats: continue (train.steps 3 -> 5)' in out
  assert 'beats: trained to step 5 (resumed from step 3)' in out
  assert len(os.listdir(os.path.join(workdir, 'superseded'))) == 2
  with open(os.path.join(workdir, 'config.json')) as f:
    assert '"steps": 5' in f.read()


def cli(*args, **kwargs):
  return subprocess.run([sys.executable, '-m', 'asd_jax.cli.main', *args], capture_output=True,
                        text=True, **kwargs)


def test_status_tells_done_stale_and_missing(base, tmp_path):
  _, data, base_workdir = base
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


def test_killed_stages_rerun_to_the_uninterrupted_outputs(base, tmp_path):
  """kill -9 during train (after a checkpoint), embed and baselines, each then rerun; the end
  equals an uninterrupted run."""
  _, data, base_workdir = base
  config_file = tmp_path / 'longer.py'
  config_file.write_text('from tests.test_rerun import small_config\n\n\n'
                         'def get_config():\n  config = small_config()\n'
                         '  config.train.steps = 6\n  config.baseline.epochs = 3\n'
                         '  return config\n')
  env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  workdir = str(tmp_path / 'killed')
  record = os.path.join(workdir, 'stages', 'train_beats.json')

  def run_until(ready):
    proc = subprocess.Popen([sys.executable, '-m', 'asd_jax.cli.main', 'run',
                             f'--data_dir={data}', f'--workdir={workdir}',
                             f'--config={config_file}'], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    said = []
    for line in proc.stdout:
      said.append(line)
      if ready(line):
        os.killpg(proc.pid, signal.SIGKILL)
        break
    proc.wait()
    return ''.join(said)

  # after the first checkpoint of 'train beats' (its partial record), before the branch ends
  run_until(lambda line: line.startswith('== train') and _wait_for(record))
  said = run_until(lambda line: line.startswith('== embed'))
  assert 'train beats: resume the interrupted run' in said, said
  said = run_until(lambda line: line.startswith('== baselines'))
  assert 'train beats: done, unchanged' in said and 'embed beats: to do' in said, said
  finished = cli('run', f'--data_dir={data}', f'--workdir={workdir}', f'--config={config_file}',
                 env=env)
  assert finished.returncode == 0, finished.stderr
  assert 'embed beats: done, unchanged' in finished.stdout
  assert 'baselines: to do' in finished.stdout
  uninterrupted = str(tmp_path / 'uninterrupted')
  import importlib.util
  spec = importlib.util.spec_from_file_location('longer', config_file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  job.run_job(module.get_config(), data, uninterrupted, progress=False)
  got, want = outputs(workdir), outputs(uninterrupted)
  assert sorted(got) == sorted(want)
  for path in want:
    assert got[path] == want[path], path


def _wait_for(path, timeout=120):
  """True once `path` exists (the partial record written with the first checkpoint)."""
  start = time.monotonic()
  while not os.path.exists(path):
    if time.monotonic() - start > timeout:
      return False
    time.sleep(0.05)
  return True


def test_each_change_redoes_what_read_it_and_equals_a_fresh_run(base, capsys):
  """Last in this file: its final change rewrites a clip of the shared data."""
  root, data, base_workdir = base
  capsys.readouterr()
  report = {}
  for name, skipped in MATRIX.items():
    if name == 'one test clip rewritten':  # last: it changes the shared data in place
      clip = sorted(glob.glob(os.path.join(data, 'dev_data/raw/fan/test/*.wav')))[0]
      wave, rate = sf.read(clip)
      sf.write(clip, wave[::-1].copy(), rate, subtype='PCM_16')
    config, data_dir = change_of(name, root, data)
    rerun = str(root / f'rerun {name}')
    shutil.copytree(base_workdir, rerun)
    job.run_job(config, data_dir, rerun, progress=False)
    said = verdicts(capsys.readouterr().out)
    fresh = str(root / f'fresh {name}')
    job.run_job(config, data_dir, fresh, progress=False)
    capsys.readouterr()
    report[name] = sorted(s for s in STAGES if said[s] != 'done')
    assert set(said) == set(STAGES), (name, said)
    assert {s for s, v in said.items() if v == 'done'} == skipped, (name, said)
    got, want = outputs(rerun), outputs(fresh)
    assert sorted(got) == sorted(want) and len(got) == 29, name
    for path in want:
      assert got[path] == want[path], (name, path)
    shutil.rmtree(fresh)
  print(report)
