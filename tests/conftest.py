"""Shared test set-up: eight host devices, the shared fixtures, converted checkpoints."""
import atexit
import os
import shutil
import tempfile

# Several host devices so the multi-device paths run for real on a CPU; set before jax loads.
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# One persistent compilation cache for this session (and the subprocesses it starts): tests
# that build the same tiny model again, or restart a killed job, reuse the compiled programs.
# It starts empty, so no test depends on an earlier run.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  _cache = tempfile.mkdtemp(prefix='asd_jax_tests_jit_')
  atexit.register(shutil.rmtree, _cache, ignore_errors=True)
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _cache
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(os.path.dirname(REPO), 'shared', 'fixtures')


def fixture_path(name: str) -> str:
  """A file of ../shared/fixtures. Absent, the comparison with the official code is skipped
  on a developer's machine and fails under CI=true, where the fixtures must be there."""
  path = os.path.join(FIXTURES, name)
  if not os.path.exists(path):
    message = f'{path} is absent: the official-code fixtures live in ../shared/fixtures'
    if os.environ.get('CI', '').lower() == 'true':
      pytest.fail(f'{message} (CI=true: parity with the official code must be tested)')
    pytest.skip(message)
  return path


@pytest.fixture(scope='session')
def beats_small_dir(tmp_path_factory):
  """The shared BEATs fixture converted through the converter's CLI entry point."""
  from checkpoints_convert.__main__ import main
  out = str(tmp_path_factory.mktemp('converted') / 'beats_small')
  assert main(['beats', '--input', fixture_path('beats_small.pt'), '--output', out]) == 0
  return out


@pytest.fixture(scope='session')
def audiomae_small_dir(tmp_path_factory):
  from checkpoints_convert.__main__ import main
  out = str(tmp_path_factory.mktemp('converted') / 'audiomae_small')
  assert main(['audiomae', '--input', fixture_path('audiomae_small_pretrained.pth'),
               '--output', out, '--num_heads', '4']) == 0
  return out


def tiny_config(**train):
  """The default config with random-init tiny encoders, 1-s clips and a training run (the
  shipped encoders are tested in tests/test_run.py; the tiny default itself does not train)."""
  from asd_jax.configs import default
  config = default.get_config()
  config.beats.checkpoint = config.audiomae.checkpoint = ''
  config.data.clip_seconds = 1.0
  config.train.batch_size = 8
  config.model.embed_dim = 32
  config.train.steps = 150
  for key, value in train.items():
    config.train[key] = value
  return config
