"""Flags and set-up shared by the commands that train or score."""
from __future__ import annotations

import glob
import logging
import os
import sys

from ml_collections import config_flags

from asd_jax import configs

CONFIG_DIR = os.path.dirname(os.path.abspath(configs.__file__))


def config_names() -> list[str]:
  """The configs that ship with the package, by name (configs/<name>.py in the repository)."""
  return sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(CONFIG_DIR, '*.py'))
                if not os.path.basename(p).startswith('_'))


def config_path(name_or_path: str) -> str:
  """A shipped config's file for its name (`dcase2026`), else the path as given."""
  if os.sep not in name_or_path and not name_or_path.endswith('.py'):
    return os.path.join(CONFIG_DIR, f'{name_or_path}.py')
  return name_or_path


def define_config_flag():
  return config_flags.DEFINE_config_file(
      'config', config_path('default'), f'a shipped config by name ({", ".join(config_names())})'
      ' or a config file; override fields with --config.train.steps=500 and the like',
      lock_config=True)


def fail(message: str) -> None:
  """One clear line on stderr and exit status 1 (no traceback)."""
  print(f'error: {message}', file=sys.stderr)
  sys.exit(1)


def check_output_file(flag: str, path: str | None) -> None:
  """Fails in one line now, not after the work, when the file that `flag` names could not be
  written there (a file in the way of its folder, a folder by its name, no permission)."""
  if path is None:
    return
  from asd_jax import workdir
  try:
    if os.path.isdir(path):
      raise IsADirectoryError(21, 'Is a directory')
    workdir.make_writable(os.path.dirname(os.path.abspath(path)))
  except OSError as e:
    fail(f'{flag}={path}: cannot be written ({e.strerror or e})')


def fail_lines(lines: list[str]) -> None:
  """One `error:` line per problem (each names its file) and exit status 1."""
  for line in lines:
    print(f'error: {line}', file=sys.stderr)
  sys.exit(1)


def define_strict_flag():
  from absl import flags
  return flags.DEFINE_bool('strict', True, 'stop on bad input files (truncated, NaN/Inf or '
                           'all-zero audio, odd channel count or sample rate, far too short, '
                           'misnamed), naming each; --nostrict leaves them out and counts them')


def reject_positional(argv) -> None:
  from absl import app
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')


def distributed_arguments(train) -> dict:
  """jax.distributed.initialize's arguments from the config: only the values set, so JAX's own
  cluster detection fills the rest."""
  arguments = {}
  if train.coordinator_address:
    arguments['coordinator_address'] = train.coordinator_address
  if train.num_processes > 0:
    arguments['num_processes'] = train.num_processes
  if train.process_id >= 0:
    arguments['process_id'] = train.process_id
  return arguments


def prepared_config(config_flag):
  """The config, with JAX started (multi-host when asked) and the config validated against
  the devices found; a bad value ends the command with one line."""
  import jax
  from asd_jax.model.build import ConfigError, validate
  config = config_flag.value
  if config.train.distributed:
    jax.distributed.initialize(**distributed_arguments(config.train))
  try:
    validate(config, jax.device_count())
  except ConfigError as e:
    fail(str(e))
  logging.info('JAX process %d/%d, devices: %s', jax.process_index(), jax.process_count(),
               jax.devices())
  return config
