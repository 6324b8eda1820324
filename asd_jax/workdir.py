"""A workdir is made once, written by one run at a time, and says which config made it last.

W/.lock          held (fcntl.flock) by the run or training that writes W; the kernel drops it
                 when that process dies, so a killed run's lock is simply taken over
W/config.json    the resolved config of the latest run, written atomically
W/superseded/    outputs a changed config made obsolete but that took long to make (training
                 checkpoints), moved aside rather than deleted
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time

from asd_jax.io import WorkdirError, atomic_write_text

LOCK_FILE = '.lock'


def make_writable(folder: str) -> None:
  """Creates `folder` and writes and removes a probe file in it; OSError if it cannot."""
  os.makedirs(folder, exist_ok=True)
  probe = os.path.join(folder, f'.write-test-{os.getpid()}')
  with open(probe, 'w'):
    pass
  os.remove(probe)


def prepare(workdir: str, flag: str = '--workdir') -> str:
  """The folder's absolute path, created and checked writable; one line naming `flag` if it
  cannot be."""
  path = os.path.abspath(workdir)
  try:
    make_writable(path)
  except OSError as e:
    raise WorkdirError(f'{flag}={workdir}: cannot be created or written '
                       f'({e.strerror or e})') from None
  return path


@contextlib.contextmanager
def claimed(workdir: str):
  """Holds W/.lock for the duration: a second run on the same workdir stops at once, naming the
  process that holds it."""
  path = os.path.join(workdir, LOCK_FILE)
  handle = open(path, 'a+')
  try:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    handle.seek(0)
    holder = handle.read().strip() or 'another process'
    handle.close()
    raise WorkdirError(f'{workdir} is in use by {holder}; wait for it to finish or use another '
                       '--workdir') from None
  try:
    handle.seek(0)
    handle.truncate()
    handle.write(f'process {os.getpid()} ({" ".join(os.path.basename(a) for a in sys.argv[:2])},'
                 f' since {time.strftime("%H:%M:%S")})')
    handle.flush()
    yield
  finally:
    handle.close()  # releases the lock


def write_config(workdir: str, config) -> None:
  """W/config.json: the resolved config this run used."""
  atomic_write_text(os.path.join(workdir, 'config.json'),
                    json.dumps(config.to_dict(), indent=2, default=str) + '\n')


def set_aside(workdir: str, path: str, stage: str) -> str | None:
  """Moves `path` to W/superseded/<stage>-<n>/ (a fresh n); returns where, or None if absent."""
  if not os.path.exists(path):
    return None
  base = os.path.join(workdir, 'superseded', stage.replace(' ', '_'))
  n = 1
  while os.path.exists(f'{base}-{n}'):
    n += 1
  os.makedirs(os.path.dirname(base), exist_ok=True)
  shutil.move(path, f'{base}-{n}')
  return f'{base}-{n}'


def output_bytes(workdir: str) -> int:
  """Bytes of the run's outputs in the workdir (not its built-in data, not what was set aside):
  what a redo may delete before writing anew."""
  total = 0
  for root, folders, files in os.walk(workdir):
    if root == workdir:
      folders[:] = [f for f in folders if f not in ('data', 'superseded')]
    total += sum(os.path.getsize(os.path.join(root, f)) for f in files
                 if not os.path.islink(os.path.join(root, f)))
  return total
