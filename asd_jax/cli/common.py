"""Flags and set-up shared by the commands that train or score."""
from __future__ import annotations

import logging
import os
import sys

import configs
from ml_collections import config_flags

DEFAULT_CONFIG = os.path.join(os.path.dirname(configs.__file__), 'default.py')


def define_config_flag():
  return config_flags.DEFINE_config_file(
      'config', DEFAULT_CONFIG, 'configuration file (configs/*.py); override fields with '
      '--config.train.steps=500 and the like', lock_config=True)


def fail(message: str) -> None:
  """One clear line on stderr and exit status 1 (no traceback)."""
  print(f'error: {message}', file=sys.stderr)
  sys.exit(1)


def reject_positional(argv) -> None:
  from absl import app
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')


def prepared_config(config_flag):
  """The config, with JAX started (multi-host when asked) and the config validated against
  the devices found; a bad value ends the command with one line."""
  import jax
  from asd_jax.model.build import ConfigError, validate
  config = config_flag.value
  if config.train.distributed:
    jax.distributed.initialize()
  try:
    validate(config, jax.device_count())
  except ConfigError as e:
    fail(str(e))
  logging.info('JAX process %d/%d, devices: %s', jax.process_index(), jax.process_count(),
               jax.devices())
  return config
