"""On-disk form of a converted encoder: `DIR/params` (Orbax) and `DIR/config.json`.

Written atomically: everything goes to a sibling temporary folder that replaces DIR only once
complete, so an interrupted conversion never leaves a half-written DIR behind.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import jax
import numpy as np
import orbax.checkpoint as ocp

from asd_jax import provenance
from asd_jax.io import replace_folder
from asd_jax.encoders.config import EncoderConfig, config_from_json, config_to_json

CONFIG_FILE = 'config.json'
PARAMS_DIR = 'params'


def is_converted_dir(path: str) -> bool:
  return (os.path.isfile(os.path.join(path, CONFIG_FILE))
          and os.path.isdir(os.path.join(path, PARAMS_DIR)))


def check_replaceable(path: str) -> None:
  """FileExistsError where `path` holds something other than a converted checkpoint (an
  earlier conversion is replaced; anything else is not), so a long job can check first."""
  path = os.path.abspath(path)
  if os.path.exists(path) and not is_converted_dir(path) and os.listdir(path):
    raise FileExistsError(f'{path}: exists and is not a converted checkpoint; refusing to '
                          'overwrite it')


def save_converted(path: str, params, config: EncoderConfig) -> None:
  """Writes params + config to `path`, replacing an earlier conversion there atomically."""
  path = os.path.abspath(path)
  check_replaceable(path)
  parent = os.path.dirname(path)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f'.{os.path.basename(path)}.tmp-', dir=parent)
  try:
    params = jax.tree_util.tree_map(np.asarray, params)
    with ocp.StandardCheckpointer() as checkpointer:
      checkpointer.save(os.path.join(staging, PARAMS_DIR), params)
    with open(os.path.join(staging, CONFIG_FILE), 'w') as f:
      f.write(config_to_json(config))
    replace_folder(staging, path)
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def read_config(path: str) -> EncoderConfig:
  """The architecture a converted folder describes, without loading its weights."""
  with open(os.path.join(path, CONFIG_FILE)) as f:
    return config_from_json(f.read())


def load_converted(path: str):
  """Returns (params as NumPy arrays, config) of a folder written by `save_converted`."""
  if not is_converted_dir(path):
    raise FileNotFoundError(f'{path}: not a converted encoder checkpoint (expected {CONFIG_FILE} '
                            f'and {PARAMS_DIR}/; make one with python -m checkpoints_convert)')
  provenance.note_files(path)
  config = read_config(path)
  with ocp.StandardCheckpointer() as checkpointer:
    params = checkpointer.restore(os.path.abspath(os.path.join(path, PARAMS_DIR)))
  return params, config
