"""Small file helpers: everything the project writes lands atomically; what a workdir already
holds is checked against the run that reuses it."""
from __future__ import annotations

import csv
import io
import os
import tempfile


class WorkdirError(ValueError):
  """A workdir whose contents do not fit this run (other clips, another tiny encoder, a step
  that has to happen in one process first); one line saying what to do."""


def atomic_write_text(path: str, text: str) -> None:
  """Writes `text` to `path` via a temporary file in the same folder and a rename."""
  atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: str, data: bytes) -> None:
  """Writes `data` to `path` via a temporary file in the same folder and a rename."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', dir=folder)
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(data)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def atomic_write_csv(path: str, rows) -> None:
  """Rows (sequences of values) as CSV with '\n' line ends, written atomically."""
  buffer = io.StringIO()
  csv.writer(buffer, lineterminator='\n').writerows(rows)
  atomic_write_text(path, buffer.getvalue())


def folder_bytes(path: str) -> int:
  """Bytes of the files under `path`."""
  return sum(os.path.getsize(os.path.join(root, f))
             for root, _, files in os.walk(path) for f in files)


def replace_folder(staging: str, path: str) -> None:
  """Puts the complete folder `staging` at `path`; an earlier folder there is replaced only once
  the new one is in place (renamed aside, then removed)."""
  import shutil
  if os.path.exists(path):
    old = path + '.old'
    shutil.rmtree(old, ignore_errors=True)
    os.replace(path, old)
    os.replace(staging, path)
    shutil.rmtree(old)
  else:
    os.replace(staging, path)
