"""What each stage of a workdir was made from, so a rerun redoes exactly what changed.

A stage runs inside `Ledger.recording`, which hands it a read-only view of the config that notes
every field the stage reads (dotted path -> value), and notes the checkpoint folders it loads
(`note_files`, called by the loaders). Its record, W/stages/<stage>.json, holds those reads, the
digests of the loaded folders, its declared inputs (clip-set digests, the identities of the
stages it consumes) and the package version. On a rerun `Ledger.verdict` compares the recorded
reads with the current config, re-digests the recorded folders and compares the inputs: the
stage is done only if nothing it read or consumed changed, and otherwise says what did. Because
the identity comes from what the stage actually read, a new config field can never be left out.

A stage that checkpoints as it goes (training) saves a partial record once set up and with each
checkpoint: a rerun with the same reads resumes it, any other discards it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import threading

import ml_collections

from asd_jax.io import atomic_write_text

# Fields that decide how a stage is scheduled, never what it writes: not part of any identity.
SCHEDULING_ONLY = frozenset({'data.num_workers', 'baseline.concurrent_machines',
                             'train.keep_checkpoints'})
_ABSENT = '<absent>'


def _plain(value):
  """The JSON form a read is recorded and compared in (tuples become lists)."""
  return json.loads(json.dumps(value, default=str))


class ConfigReads:
  """A read-only view of a ConfigDict that notes every leaf read into `reads` {path: value}.

  Sub-configs come back as views of the same kind; `overrides` are derived values (a path the
  job sets itself) that are served but not noted."""

  def __init__(self, config: ml_collections.ConfigDict, reads: dict, prefix: str = '',
               overrides: dict | None = None):
    object.__setattr__(self, '_config', config)
    object.__setattr__(self, '_reads', reads)
    object.__setattr__(self, '_prefix', prefix)
    object.__setattr__(self, '_overrides', overrides or {})

  def _read(self, key: str):
    path = self._prefix + str(key)
    if path in self._overrides:
      return self._overrides[path]
    value = self._config[key]
    if isinstance(value, ml_collections.ConfigDict):
      return ConfigReads(value, self._reads, path + '.', self._overrides)
    if path not in SCHEDULING_ONLY:
      self._reads[path] = _plain(value)
    return value

  def __getattr__(self, key: str):
    if key.startswith('__'):
      raise AttributeError(key)
    try:
      return self._read(key)
    except KeyError as e:
      raise AttributeError(key) from e

  def __getitem__(self, key: str):
    return self._read(key)

  def __setattr__(self, key, value):
    raise TypeError(f'config.{self._prefix}{key}: a stage reads the config, it does not set it')

  __setitem__ = __setattr__

  def __contains__(self, key) -> bool:
    return key in self._config

  def __iter__(self):
    return iter(self._config.keys())

  def keys(self):
    return self._config.keys()

  def get(self, key, default=None):
    return self._read(key) if key in self._config else default

  def items(self):
    return [(k, self._read(k)) for k in self._config.keys()]

  def values(self):
    return [self._read(k) for k in self._config.keys()]

  def to_dict(self) -> dict:
    """Every leaf below, each noted as read."""
    return {k: v.to_dict() if isinstance(v, ConfigReads) else v for k, v in self.items()}


def with_value(config, path: str, value):
  """`config` in which `path` (dotted) reads as `value`: a derived setting the job chooses (the
  pre-trained encoder's folder), so it is not a read of the user's config."""
  if isinstance(config, ConfigReads):
    overrides = dict(config._overrides, **{config._prefix + path: value})
    return ConfigReads(config._config, config._reads, config._prefix, overrides)
  copy = ml_collections.ConfigDict(config.to_dict())
  *parents, leaf = path.split('.')
  node = copy
  for key in parents:
    node = node[key]
  node[leaf] = value
  return copy


def config_value(config: ml_collections.ConfigDict, path: str):
  """The config's value at a dotted path, in recorded form; _ABSENT where there is none."""
  node = config
  for key in path.split('.'):
    if not isinstance(node, (ml_collections.ConfigDict, dict)) or key not in node:
      return _ABSENT
    node = node[key]
  return _plain(node.to_dict() if isinstance(node, ml_collections.ConfigDict) else node)


# --- loaded files -------------------------------------------------------------------------------

_noting: list[dict] = []  # the folders loaded by the stages now recording, {path: digest}
_noting_lock = threading.Lock()
_digest_cache: dict[tuple, str] = {}


def folder_digest(path: str) -> str:
  """SHA-1 over the names and contents of every file below `path` (or of the file itself);
  _ABSENT if it does not exist. Cached per file by size and time, so a reload costs a stat."""
  path = os.path.abspath(path)
  if not os.path.exists(path):
    return _ABSENT
  files = [path] if os.path.isfile(path) else sorted(
      os.path.join(root, name) for root, _, names in os.walk(path) for name in names)
  digest = hashlib.sha1()
  for file in files:
    stat = os.stat(file)
    key = (file, stat.st_size, stat.st_mtime_ns)
    if key not in _digest_cache:
      content = hashlib.sha1()
      with open(file, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
          content.update(block)
      _digest_cache[key] = content.hexdigest()
    digest.update(f'{os.path.relpath(file, path)}:{_digest_cache[key]}\n'.encode())
  return digest.hexdigest()


def note_files(path: str) -> None:
  """Called by whatever loads weights: the stages recording now depend on that folder's bytes."""
  with _noting_lock:
    if _noting:
      digest = folder_digest(path)
      for files in _noting:
        files[os.path.abspath(path)] = digest


def names_below_common_folder(clips) -> list[str]:
  """Each clip's path below the clips' common folder: how identities name clips, so that a
  dataset moved, or copied with its times kept (mv, rsync -a, cp -a; a job's node-local copy),
  is the same input."""
  root = os.path.commonpath([c.path for c in clips]) if clips else ''
  return [os.path.relpath(c.path, root) for c in clips]


def clips_identity(clips) -> str:
  """A clip set as an input: count and a digest of each file's name below the clips' common
  folder (names_below_common_folder), size and modification time. A clip rewritten in place
  changes it; no audio is decoded."""
  digest = hashlib.sha1()
  for clip, name in zip(clips, names_below_common_folder(clips)):
    stat = os.stat(clip.path)
    digest.update(f'{name}|{stat.st_size}|{stat.st_mtime_ns}\n'.encode())
  return f'{len(clips)} clips #{digest.hexdigest()[:16]}'


# --- records and verdicts -----------------------------------------------------------------------

@dataclasses.dataclass
class Verdict:
  """What a rerun does with a stage: 'done' (skip), 'missing' (never finished here), 'redo'
  (something it read changed: `why`), 'resume' (an interrupted run of the same stage),
  'extend' (only a field allowed to grow grew, e.g. train.steps)."""
  stage: str
  state: str
  inputs: dict  # the inputs it was judged on, which its recording then records
  why: str = ''
  record: dict | None = None

  @property
  def done(self) -> bool:
    return self.state == 'done'

  @property
  def continues(self) -> bool:
    """Whether the stage carries on from its earlier outputs (resume, extend)."""
    return self.state in ('resume', 'extend')

  @property
  def action(self) -> str:
    """What a rerun does, in words: 'done, unchanged', 'redo (optim.learning_rate ...)'."""
    return {'done': 'done, unchanged', 'missing': 'to do', 'redo': f'redo ({self.why})',
            'resume': 'resume the interrupted run', 'extend': f'continue ({self.why})'}[self.state]

  def line(self) -> str:
    return f'{self.stage}: {self.action}'


def _is_identity(value) -> bool:
  return isinstance(value, str) and len(value) == 40 and all(c in '0123456789abcdef'
                                                             for c in value)


def _input_changes(old: dict, new: dict) -> list[str]:
  """'train beats was redone' for a consumed stage, 'clips A -> B' for anything else."""
  changes = []
  for key in sorted(set(old) | set(new)):
    was, now = old.get(key, _ABSENT), new.get(key, _ABSENT)
    if was == now:
      continue
    if _is_identity(was) and now == _ABSENT:
      changes.append(f'{key} is not done')
    elif _is_identity(was) or _is_identity(now):
      changes.append(f'{key} was redone')
    else:
      changes.append(f'{key} {was} -> {now}')
  return changes


def _summary(changes: list[str], limit: int = 3) -> str:
  more = f' and {len(changes) - limit} more' if len(changes) > limit else ''
  return '; '.join(changes[:limit]) + more


class StageRun:
  """A stage being recorded: its config view, loaded folders, result and outputs (paths the
  stage writes; a rerun finds it stale when one is gone)."""

  def __init__(self, ledger: 'Ledger', name: str, inputs: dict, reads: dict,
               outputs: list[str]):
    self.ledger, self.name, self.inputs, self.outputs = ledger, name, inputs, outputs
    self.reads = reads
    self.files: dict[str, str] = {}
    self.config = ConfigReads(ledger.config, reads)
    self.result = None

  def record(self, complete: bool) -> dict:
    from asd_jax import __version__
    body = {'config': dict(sorted(self.reads.items())), 'inputs': self.inputs,
            'files': dict(sorted(self.files.items())), 'version': __version__}
    identity = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()
    outputs = [os.path.relpath(os.path.abspath(p), self.ledger.workdir) for p in self.outputs]
    return {'stage': self.name, 'complete': complete, 'identity': identity, **body,
            'outputs': outputs, 'result': self.result}

  def save_partial(self) -> None:
    """Records what the stage has read so far (call it once all that shapes the saved state is
    read, and after each checkpoint): an interrupted run can resume, a changed config cannot."""
    self.ledger.write(self.record(complete=False))


class Ledger:
  """The records of one workdir (W/stages/*.json) against the current config."""

  def __init__(self, workdir: str, config: ml_collections.ConfigDict, writer: bool = True):
    self.workdir = workdir
    self.config = config
    self.writer = writer  # several JAX processes: process 0 alone writes the shared records
    self.sync = None  # set while several processes run the stages together: a barrier

  def path(self, name: str) -> str:
    return os.path.join(self.workdir, 'stages', name.replace(' ', '_') + '.json')

  def load(self, name: str) -> dict | None:
    try:
      with open(self.path(name)) as f:
        return json.load(f)
    except (OSError, ValueError):
      return None  # absent, or unreadable: the stage is redone

  def write(self, record: dict) -> None:
    if self.writer:
      atomic_write_text(self.path(record['stage']), json.dumps(record, indent=1))

  def identity(self, name: str) -> str:
    """The identity of a finished stage, as an input of the stages that consume it."""
    record = self.load(name)
    return record['identity'] if record and record['complete'] else _ABSENT

  def result(self, name: str):
    return self.load(name)['result']

  def verdict(self, name: str, inputs: dict, extendable: tuple[str, ...] = ()) -> Verdict:
    """Compares the stage's record with the config, its loaded folders and `inputs` now."""
    if self.sync:
      self.sync(f'verdict {name}')
    record = self.load(name)
    if record is None:
      return Verdict(name, 'missing', inputs)
    from asd_jax import __version__
    changes = _input_changes(record['inputs'], inputs)
    changes += [f'{path} changed' for path, digest in record['files'].items()
                if folder_digest(path) != digest]
    if record['version'] != __version__:
      changes.append(f'asd-jax {record["version"]} -> {__version__}')
    now = {path: config_value(self.config, path) for path in record['config']}
    config_changes = {path: (old, now[path]) for path, old in record['config'].items()
                      if now[path] != old}
    changes += [f'{path} {old} -> {new}' for path, (old, new) in config_changes.items()]
    missing = [p for p in record['outputs'] if not os.path.exists(os.path.join(self.workdir, p))]
    changes += [f'{p} is missing' for p in missing]
    if not changes:
      return Verdict(name, 'done' if record['complete'] else 'resume', inputs, record=record)
    grown = all(p in extendable and isinstance(old, (int, float)) and isinstance(new, (int, float))
                and new > old for p, (old, new) in config_changes.items())
    if record['complete'] and config_changes and grown and len(changes) == len(config_changes):
      return Verdict(name, 'extend', inputs, _summary(changes), record)
    return Verdict(name, 'redo', inputs, _summary(changes), record)

  @contextlib.contextmanager
  def recording(self, verdict: Verdict, outputs: list[str] = ()):
    """Runs the stage `verdict` judged under a noting config view, on the inputs it was judged
    on; its record is written when the body returns (not when it raises). A resumed or extended
    stage keeps the reads of the run it carries on (they shaped the state it resumes)."""
    name = verdict.stage
    earlier = verdict.record if verdict.continues else None
    reads = dict(earlier['config']) if earlier else {}
    run = StageRun(self, name, verdict.inputs, reads, list(outputs))
    if earlier:
      run.files.update(earlier['files'])
    with _noting_lock:
      _noting.append(run.files)
    try:
      yield run
    finally:
      with _noting_lock:
        _noting[:] = [files for files in _noting if files is not run.files]
    for path in list(reads):  # grown fields of an extended run: their new value
      reads[path] = config_value(self.config, path)
    self.write(run.record(complete=True))
    if self.sync:
      self.sync(f'recorded {name}')
