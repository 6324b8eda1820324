"""Flags and set-up shared by the commands that train or score."""
from __future__ import annotations

import logging
import os
import sys

import configs
from absl import flags
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


def start_jax(config) -> None:
  """Multi-host initialisation when asked, and a log line of what we run on."""
  import jax
  if config.train.distributed:
    jax.distributed.initialize()
  logging.info('JAX process %d/%d, devices: %s', jax.process_index(), jax.process_count(),
               jax.devices())
