"""The `asd-jax` entry point: command list and per-command --help."""
import os
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
  assert all(c in top.stdout for c in ('synth', 'inspect', 'train', 'run', 'evaluate', 'bench'))
  train = _run('train', '--help')  # absl's --help exits with status 1 by its own convention
  assert 'asd-jax train --data_dir=D --workdir=W' in train.stdout
  for flag in ('--config:', '--data_dir:', '--workdir:'):
    assert flag in train.stdout
  unknown = _run('fly')
  assert unknown.returncode == 2 and "unknown command 'fly'" in unknown.stderr
