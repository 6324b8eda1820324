"""The `asd-jax` entry point: command list and per-command --help."""
import os
import re
import subprocess
import sys

from tests.conftest import REPO


def _run(*args):
  return subprocess.run([sys.executable, '-m', 'asd_jax.cli.main', *args],
                        env={**os.environ, 'PYTHONPATH': REPO}, capture_output=True, text=True,
                        timeout=300)


def test_help_lists_each_commands_own_flags():
  top = _run('--help')
  assert top.returncode == 0
  assert all(c in top.stdout for c in ('synth', 'inspect', 'pretrain', 'train', 'run', 'evaluate',
                                    'bench'))
  train = _run('train', '--help')  # absl's --help exits with status 1 by its own convention
  assert 'asd-jax train --data_dir=D --workdir=W' in train.stdout
  for flag in ('--config:', '--data_dir:', '--workdir:'):
    assert flag in train.stdout
  unknown = _run('fly')
  assert unknown.returncode == 2 and "unknown command 'fly'" in unknown.stderr


def test_readme_commands_table_matches_each_commands_help():
  """README's commands table and each command's --help open with the same sentence, the one
  `asd-jax --help` lists; README stays a front page (at most 200 lines)."""
  from asd_jax.cli.main import COMMANDS, SUMMARY
  with open(os.path.join(REPO, 'README.md')) as f:
    readme = f.read()
  assert len(readme.splitlines()) <= 200
  rows = dict(re.findall(r'^\| `asd-jax (\w+)[^|]*\| (.+?) \|$', readme, re.MULTILINE))
  assert rows == COMMANDS
  top = _run('--help').stdout.splitlines()
  assert top[0] == SUMMARY
  for command, purpose in COMMANDS.items():
    assert any(line.split() == [command, *purpose.split()] for line in top), command
    assert _run(command, '--help').stdout.splitlines()[0] == purpose, command


def test_library_info_logs_stay_quiet_unless_verbosity_is_given(tmp_path):
  """absl raises an unset --verbosity to INFO, which floods a run with Orbax and XLA lines:
  a failing command ends with its one error line and prints no INFO line; --verbosity=0 brings
  INFO back."""
  args = ('run', f'--data_dir={tmp_path}/missing', f'--workdir={tmp_path}/w')
  info_line = re.compile(r'^I\d{4} ', re.MULTILINE)  # absl's INFO prefix, e.g. 'I1128 07:00'
  quiet = _run(*args)
  assert quiet.returncode == 1
  error = f'error: {tmp_path}/missing: no such dataset folder'
  assert quiet.stderr.strip().splitlines()[-1] == error
  assert not info_line.search(quiet.stderr), quiet.stderr
  verbose = _run(*args, '--verbosity=0')
  assert verbose.returncode == 1 and 'JAX process 0/1' in verbose.stderr
  assert info_line.search(verbose.stderr)


def test_misspelt_config_field_is_one_line(tmp_path):
  """ml_collections answers an override of a field the config lacks with a traceback from deep
  inside its flag parsing; the command names the flag and the suggestion instead."""
  wrong = _run('run', '--config.train.stepz=3', f'--workdir={tmp_path}/w')
  assert wrong.returncode == 1
  assert wrong.stderr.strip() == ("error: --config.train.stepz: the config has no field 'stepz'. "
                                  'Did you mean "steps" instead of "stepz"?')
  nested = _run('pretrain', '--config.beats.tiny.patch=8', f'--data_dir={tmp_path}/d',
                f'--output_dir={tmp_path}/o')
  assert nested.returncode == 1 and 'Traceback' not in nested.stderr
  assert nested.stderr.startswith("error: --config.beats.tiny.patch: the config has no field")
  spelt = _run('pretrain', '--config.beats.tiny.input_patch_size=8', '--help')  # a real field
  assert 'error' not in spelt.stderr and spelt.stdout.startswith('Pre-train tiny encoders on')


def test_configs_are_named_from_any_directory_and_bad_ones_are_one_line(tmp_path):
  """--config=NAME finds a shipped config outside the repository; a missing data folder is
  named before the config's checkpoints are checked; a config that is not there or does not
  load, and a misspelt field, are one line each."""
  run = lambda *a: subprocess.run([sys.executable, '-m', 'asd_jax.cli.main', *a],
                                  capture_output=True, text=True, timeout=300, cwd=tmp_path)
  missing_data = run('train', '--config=dcase2026', '--data_dir=/nonexistent', '--workdir=w')
  assert missing_data.returncode == 1
  assert missing_data.stderr.strip().splitlines() == [
      'error: /nonexistent: no such dataset folder']
  misspelt = run('train', '--config=dcase2026', '--config.lora.rnak=4', '--data_dir=/x',
                 '--workdir=w')
  assert misspelt.returncode == 1 and misspelt.stderr.strip() == (
      "error: --config.lora.rnak: the config has no field 'rnak'. "
      'Did you mean "rank" instead of "rnak"?')
  unknown = run('train', '--config=dcase2062', '--data_dir=/x', '--workdir=w')
  assert unknown.returncode == 1 and unknown.stderr.strip() == (
      'error: --config=dcase2062: no such config file or shipped config; the shipped ones: '
      'dcase2026, dcase2026_audiomae, dcase2026_beats, default')
  broken = tmp_path / 'broken.py'
  broken.write_text('def get_config(:\n')
  bad = run('run', f'--config={broken}', '--workdir=w')
  assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
  assert bad.stderr.startswith(f'error: --config={broken}: cannot be loaded: SyntaxError')


def test_pretrain_writes_encoders_from_the_datasets_own_clips(tmp_path):
  """`asd-jax pretrain` on a small dataset: one converted-checkpoint folder per branch, of the
  config's tiny architecture, that a config can name as its checkpoint."""
  from asd_jax.data import synthetic
  from asd_jax.encoders.checkpoint import load_converted
  data = str(tmp_path / 'data')
  synthetic.generate(data, synthetic.SynthConfig(machines=('valve',), clip_seconds=1.0,
                                                 source_train=4, target_train=1,
                                                 test_per_group=1))
  made = _run('pretrain', f'--data_dir={data}', f'--output_dir={tmp_path}/out', '--branches=beats',
              '--config.pretrain.steps=2', '--config.pretrain.batch_size=2',
              '--config.data.clip_seconds=1.0', '--config.data.num_workers=0',
              '--config.beats.tiny.encoder_layers=1')
  assert made.returncode == 0, made.stderr
  assert 'beats: 2 steps on 5 clips' in made.stdout
  _, arch = load_converted(str(tmp_path / 'out' / 'beats'))
  assert arch.kind == 'beats' and arch.encoder_layers == 1
  assert not os.path.exists(tmp_path / 'out' / 'audiomae')


def test_bad_output_folders_files_and_values_are_one_line_before_any_work(tmp_path):
  (tmp_path / 'full').mkdir()
  (tmp_path / 'full' / 'x').write_text('')
  (tmp_path / 'file').write_text('')
  for args, line in (
      ([f'--output_dir={tmp_path}/full'], f'error: {tmp_path}/full: exists and is not empty'),
      ([f'--output_dir={tmp_path}/file/d'],
       f'error: --output_dir={tmp_path}/file/d: cannot be created or written (File exists)'),
      ([f'--output_dir={tmp_path}/d', '--severity_range=a,b'],
       'error: --severity_range needs numbers, low,high; got a,b')):
    result = _run('synth', *args)
    assert result.returncode == 1 and result.stderr.strip() == line, result.stderr
  pretrain = _run('pretrain', f'--data_dir={tmp_path}/data', f'--output_dir={tmp_path}/file/o')
  assert pretrain.returncode == 1 and pretrain.stderr.strip() == (
      f'error: --output_dir={tmp_path}/file/o: cannot be created or written (Not a directory)')
  # files written after long work are checked before it
  (tmp_path / 'o' / 'beats').mkdir(parents=True)
  (tmp_path / 'o' / 'beats' / 'notes.txt').write_text('')
  pretrain = _run('pretrain', f'--data_dir={tmp_path}/data', f'--output_dir={tmp_path}/o')
  assert pretrain.returncode == 1 and pretrain.stderr.strip() == (
      f'error: {tmp_path}/o/beats: exists and is not a converted checkpoint; refusing to '
      'overwrite it')
  bench = _run('bench', f'--json={tmp_path}/full')
  assert bench.returncode == 1 and bench.stderr.strip() == (
      f'error: --json={tmp_path}/full: cannot be written (Is a directory)')
  evaluate = _run('evaluate', '--submission_dir=s', '--ground_truth_dir=g',
                  f'--result_csv={tmp_path}/full')
  assert evaluate.returncode == 1 and evaluate.stderr.strip() == (
      f'error: --result_csv={tmp_path}/full: cannot be written (Is a directory)')
  score = _run('score', '--detector=d', f'--output={tmp_path}/file/s.csv', 'x.wav')
  assert score.returncode == 1 and score.stderr.strip() == (
      f'error: --output={tmp_path}/file/s.csv: cannot be written (File exists)')
