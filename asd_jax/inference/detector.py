"""A finished run as a detector for new recordings: `export` writes it, `Detector` scores with it.

An exported folder D holds everything scoring needs and nothing of the dataset:
- manifest.json: the system, its channel mode and branches, the machine types and sections it
  knows, the package version, the source workdir and the identities of the stages it came from,
  the creation time;
- config.json: the run's config (model and audio settings);
- branches/<branch>/: the trained model with LoRA merged into the frozen kernels (Orbax) and its
  encoder architecture, in the converted-checkpoint form (encoders/checkpoint.py);
- reference.json + reference.npz: per machine type the system's normal reference: Ledoit-Wolf
  means and precisions (or the kNN bank) of the embedding and of each clip bank, every robust-z
  calibration, the fusion weights and the decision threshold.
The log-mel reference detector exports the same way with no branch folders.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import shutil
import tempfile
import zipfile
from typing import NamedTuple

import numpy as np

from asd_jax.io import WorkdirError, replace_folder
from asd_jax.model.asd_model import TWO_CHANNEL
from asd_jax.scoring import systems as systems_lib
from asd_jax.scoring.calibration import RobustZ, gamma_threshold
from asd_jax.scoring.ledoit_wolf import Gaussian
from asd_jax.scoring.normal_reference import KnnReference, MahalanobisReference, fit_mahalanobis

FORMAT = 1
LOGMEL_SYSTEM = 'reference_logmel'
# The log-mel reference's one "branch": the near channel's log-mel statistics.
LOGMEL_FEATURES = 'logmel_statistics'
MANIFEST, CONFIG, REFERENCE = 'manifest.json', 'config.json', 'reference'
# What a clip's name must start with to give its section (DCASE names all do).
SECTION_PREFIX = re.compile(r'section_(\d{2})_')
# Clips scored per pass over the encoders: bounds the waves held in memory at once.
CHUNK_CLIPS = 256


def exportable_systems(score_config) -> list[str]:
  return [s.name for s in systems_lib.presets(score_config)] + [LOGMEL_SYSTEM]


# --- the references as JSON + arrays -------------------------------------------------------

_TYPES = {cls.__name__: cls for cls in (RobustZ, Gaussian, MahalanobisReference, KnnReference,
                                        systems_lib.ScorePart, systems_lib.BranchReference,
                                        systems_lib.MachineReference)}


def _encode(value, arrays: dict):
  """A JSON-able tree of `value` (the dataclasses above, dicts with tuple or str keys, lists,
  numbers); arrays go to `arrays` under a fresh key."""
  if isinstance(value, np.ndarray):
    key = f'a{len(arrays)}'
    arrays[key] = value
    return {'__array__': key}
  if dataclasses.is_dataclass(value):
    return {'__type__': type(value).__name__,
            **{f.name: _encode(getattr(value, f.name), arrays)
               for f in dataclasses.fields(value)}}
  if isinstance(value, dict):
    return {'__items__': [[_encode(list(k) if isinstance(k, tuple) else k, arrays),
                           _encode(v, arrays)] for k, v in value.items()]}
  if isinstance(value, (list, tuple)):
    return [_encode(v, arrays) for v in value]
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  return value


def _decode(tree, arrays):
  if isinstance(tree, list):
    return tuple(_decode(v, arrays) for v in tree)
  if not isinstance(tree, dict):
    return tree
  if '__array__' in tree:
    return np.asarray(arrays[tree['__array__']])
  if '__items__' in tree:
    return {_decode(k, arrays): _decode(v, arrays) for k, v in tree['__items__']}
  cls = _TYPES[tree['__type__']]
  return cls(**{k: _decode(v, arrays) for k, v in tree.items() if k != '__type__'})


# --- export ----------------------------------------------------------------------------------

def export(workdir: str, output: str, system: str = 'task2_1', data_dir: str | None = None,
           progress: bool = True) -> str:
  """Writes the detector folder `output` from the finished run in `workdir` (its dataset: the
  built-in one in W/data unless `data_dir`); returns `output`. Replaces an earlier export there
  only once the new one is complete."""
  import ml_collections
  from asd_jax import job as job_lib
  from asd_jax.train import loop
  workdir = os.path.abspath(workdir)
  config_path = os.path.join(workdir, 'config.json')
  if not os.path.isfile(config_path):
    raise WorkdirError(f'{workdir}: no config.json; not a workdir of `asd-jax run`')
  with open(config_path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  if system not in exportable_systems(config.score):
    raise WorkdirError(f'--system={system}: choose from '
                       f'{", ".join(exportable_systems(config.score))}')
  job = job_lib.Job(config, workdir, progress=False)
  job.synthetic = data_dir is None
  data_dir = data_dir or os.path.join(workdir, 'data')
  if not os.path.isdir(data_dir):
    raise WorkdirError(f'{data_dir}: no dataset there (give the run\'s --data_dir)')
  manifest = job.scanned_dataset(data_dir)
  preset = {s.name: s for s in systems_lib.presets(config.score)}.get(system)
  needed = ['reference'] if preset is None else [
      *(f'embed {b}' for b in preset.branches), 'score']
  states = dict(job.status(manifest))
  missing = [f'{name} ({states.get(name, "not part of this run")})' for name in needed
             if states.get(name) != 'done']
  if missing:
    raise WorkdirError(f'{workdir}: cannot export {system}: stage {", ".join(missing)}; finish '
                       '`asd-jax run` on it first')
  if preset is None:
    references, branches = _logmel_references(config, manifest, progress), {}
  else:
    references = _system_references(config, manifest, workdir, preset)
    branches = {b: loop.load_for_inference(config, b, manifest, workdir) for b in preset.branches}
  info = {'system': system, 'channel_mode': None if preset is None else preset.channel_mode,
          'machines': {m: sorted({c.section for c in manifest.select(machine=m)})
                       for m in manifest.machines},
          'source_workdir': workdir,
          'source_stages': {name: job.ledger.identity(name) for name in needed}}
  return write(output, info, config, references, branches)


def write(output: str, info: dict, config, references: dict, branches: dict) -> str:
  """Writes a detector folder (replacing an earlier one only once complete): `info` (system,
  channel_mode, machines: {machine: sections}, where it came from) completed with the format,
  package version and time; `references` {machine: MachineReference}; `branches`
  {branch: (model, params)} as loop.load_for_inference gives them."""
  from asd_jax import __version__
  from asd_jax.encoders import checkpoint
  parent = os.path.dirname(os.path.abspath(output))
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f'.{os.path.basename(output)}.tmp-', dir=parent)
  try:
    for branch, (model, params) in branches.items():
      folder = os.path.join(staging, 'branches', branch)
      checkpoint.save_converted(folder, params, model.encoder.config)
      with open(os.path.join(folder, 'labels.json'), 'w') as f:
        json.dump({'num_attributes': model.num_attributes}, f)
    arrays: dict = {}
    tree = _encode(references, arrays)
    with open(os.path.join(staging, REFERENCE + '.json'), 'w') as f:
      json.dump(tree, f)
    np.savez(os.path.join(staging, REFERENCE + '.npz'), **arrays)
    info = {'format': FORMAT, **info, 'branches': list(branches),
            'package_version': __version__,
            'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}
    with open(os.path.join(staging, MANIFEST), 'w') as f:
      json.dump(info, f, indent=2)
    with open(os.path.join(staging, CONFIG), 'w') as f:
      json.dump(config.to_dict(), f, indent=2, default=str)
    _replace(staging, os.path.abspath(output))
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return output


def _replace(staging: str, path: str) -> None:
  if os.path.exists(path) and not os.path.isfile(os.path.join(path, MANIFEST)):
    raise WorkdirError(f'{path}: exists and is not an exported detector; refusing to replace it')
  replace_folder(staging, path)


def _system_references(config, manifest, workdir: str, system) -> dict:
  """{machine: MachineReference} fitted on the run's own embeddings, as the score stage fits."""
  from asd_jax.scoring import clip_banks
  embeddings = {}
  for branch in system.branches:
    for bank in [None, *(b.name for b in clip_banks.of_branch(config.score.clip_banks, branch))]:
      name = clip_banks.bank_name(branch, bank)
      path = os.path.join(workdir, 'embeddings', f'{name}_{system.channel_mode}.npy')
      embeddings[name, system.channel_mode] = np.load(path)
  scorer = systems_lib.SystemScorer(manifest.clips, embeddings, config.score)
  return {m: scorer.machine_reference(system, m)[0] for m in manifest.machines}


def _logmel_references(config, manifest, progress: bool) -> dict:
  """{machine: MachineReference} of the log-mel reference detector: raw Mahalanobis distances
  (z = identity), as the reference stage scores."""
  from tqdm import tqdm
  from asd_jax.baselines import logmel_reference
  out = {}
  for machine in manifest.machines:
    train = manifest.select(machine=machine, split='train')
    features = np.stack([logmel_reference.clip_features(c.path, config.baseline.channel,
                                                        config.data.mono)
                         for c in tqdm(train, desc=f'log-mel {machine}', unit='clip',
                                       disable=not progress)])
    ref, fitted = fit_mahalanobis(features, [(c.section, c.domain) for c in train],
                                  config.score.mahalanobis_folds, 'none')
    identity = RobustZ(0.0, 1.0)
    branch = systems_lib.BranchReference(
        (systems_lib.ScorePart(LOGMEL_FEATURES, fitted, None),), identity)
    out[machine] = systems_lib.MachineReference(
        None, {LOGMEL_FEATURES: branch}, {LOGMEL_FEATURES: 1.0},
        gamma_threshold(ref, config.score.decision_quantile))
  return out


def _read_json(path: str):
  with open(path) as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'{path}: not valid JSON ({e})') from None


# --- scoring ---------------------------------------------------------------------------------

class Scores(NamedTuple):
  scores: np.ndarray  # [n] anomaly scores, higher = more anomalous
  decisions: np.ndarray  # [n] 1 = anomalous (score above the machine type's threshold)


class Detector:
  """A system exported by `asd-jax export`, ready to score new clips.

  >>> detector = Detector.load('detector')
  >>> scores, decisions = detector.score(['fan/test/section_00_0001.wav'])
  >>> detector.score(waves, machine='fan', section='00')  # [B, 2, S] or [2, S] arrays, 16 kHz
  """

  def __init__(self, info: dict, config, references: dict, models: dict):
    self.info = info
    self.config = config
    self.references = references  # machine -> MachineReference
    self.models = models  # branch -> (model, params, jitted encoder pass, clip-bank readers)

  @classmethod
  def from_models(cls, info: dict, config, references: dict, branches: dict) -> 'Detector':
    """A detector from {branch: (model, params)} (loop.load_for_inference's form)."""
    from asd_jax.inference import embed
    from asd_jax.scoring import clip_banks
    models = {}
    for branch, (model, params) in branches.items():
      banks = clip_banks.of_branch(config.score.clip_banks, branch)
      models[branch] = (model, params, embed.predictor(model, bool(banks)),
                        embed.bank_readers(model, banks))
    return cls(info, config, references, models)

  @classmethod
  def load(cls, path: str) -> 'Detector':
    """The detector exported to `path`; a folder that is not one, or is damaged (a file missing,
    cut or not what it should be), is a WorkdirError in one line."""
    if not os.path.isfile(os.path.join(path, MANIFEST)):
      raise WorkdirError(f'{path}: not an exported detector (no {MANIFEST}; make one with '
                         '`asd-jax export`)')
    try:
      return cls._load(path)
    except WorkdirError:
      raise
    except (OSError, ValueError, KeyError, TypeError) as e:
      lines = str(e).strip().splitlines() or [type(e).__name__]
      what = f'an entry {lines[0]} is missing' if isinstance(e, KeyError) else lines[0]
      raise WorkdirError(f'{path}: a damaged detector ({what}); export it again') from e

  @classmethod
  def _load(cls, path: str) -> 'Detector':
    import ml_collections
    from asd_jax.encoders import checkpoint
    from asd_jax.encoders.config import LoRAConfig
    from asd_jax.model import build
    info = _read_json(os.path.join(path, MANIFEST))
    if info.get('format') != FORMAT:
      raise WorkdirError(f'{path}: detector format {info.get("format")}; this asd-jax reads '
                         f'format {FORMAT}')
    config = ml_collections.ConfigDict(_read_json(os.path.join(path, CONFIG)))
    tree = _read_json(os.path.join(path, REFERENCE + '.json'))
    arrays_file = os.path.join(path, REFERENCE + '.npz')
    try:
      with np.load(arrays_file) as arrays:
        references = _decode(tree, arrays)
    except zipfile.BadZipFile as e:
      raise ValueError(f'{arrays_file}: not a whole .npz file ({e})') from None
    branches = {}
    for branch in info['branches']:
      folder = os.path.join(path, 'branches', branch)
      params, arch = checkpoint.load_converted(folder)
      num_attributes = _read_json(os.path.join(folder, 'labels.json'))['num_attributes']
      branches[branch] = (build.branch_model(config, arch, num_attributes, LoRAConfig()), params)
    return cls.from_models(info, config, references, branches)

  @property
  def machines(self) -> dict[str, list[str]]:
    """{machine type: its sections} the detector knows."""
    return self.info['machines']

  def features(self, waves) -> dict[str, np.ndarray]:
    """{feature name: [n, F]} of waves (each [2, samples] float32 at 16 kHz) in the system's
    channel mode: each branch's embedding and clip banks, or the log-mel statistics."""
    from asd_jax.audio import logmel
    from asd_jax.inference import embed
    from asd_jax.scoring import clip_banks
    if not self.models:
      return {LOGMEL_FEATURES: logmel.wave_statistics(waves, self.config.baseline.channel)}
    audio = self.audio
    mode = self.info['channel_mode']
    out = {}
    for branch, (_, params, predict, readers) in self.models.items():
      values = embed.collect_outputs(predict, params,
                                     embed.wave_batches(waves, audio, self.batch_size),
                                     len(waves), self.batch_size)
      if readers:
        values.update(embed.read_clip_banks(readers, waves,
                                            [f'clip {i}' for i in range(len(waves))],
                                            values.pop(('row_gate', TWO_CHANNEL))))
      for (output, m), array in values.items():
        if m == mode:
          out[clip_banks.output_bank(branch, output)] = array
    return out

  @property
  def audio(self):
    from asd_jax.train import loop
    return loop.audio_config(self.config)

  @property
  def batch_size(self) -> int:
    return self.config.embed.batch_size

  def check(self, machine: str, section: str, where: str) -> None:
    if machine not in self.machines:
      raise ValueError(f'{where}: machine type {machine!r} is unknown to this detector (it knows '
                       f'{", ".join(self.machines)})')
    if section not in self.machines[machine]:
      raise ValueError(f'{where}: {machine} section {section} is unknown to this detector (it '
                       f'knows sections {", ".join(self.machines[machine])})')

  @property
  def min_samples(self) -> int:
    """The fewest samples (16 kHz) a clip needs: the clip banks read features of whole clips."""
    from asd_jax.scoring import clip_banks
    return max((bank.min_samples(model) for branch, (model, *_) in self.models.items()
                for bank in clip_banks.of_branch(self.config.score.clip_banks, branch)),
               default=1)

  def check_length(self, samples: int, where: str) -> None:
    from asd_jax.scoring import clip_banks
    fewest = self.min_samples
    if samples < fewest:
      raise ValueError(f'{where}: {clip_banks.too_short(samples, fewest, "this detector")}')

  def check_wave(self, wave: np.ndarray, where: str) -> None:
    """A clip [2, S] this detector can score: long enough, every sample finite."""
    from asd_jax.data import audio_check
    self.check_length(wave.shape[1], where)
    problem = audio_check.nonfinite_samples(wave)
    if problem:
      raise ValueError(f'{where}: {problem}')

  def score_waves(self, waves, machines: list[str], sections: list[str]) -> Scores:
    """Scores of waves (a list of [2, samples] arrays, or [B, 2, S]) whose machine types and
    sections are given per clip."""
    features = self.features(waves)
    scores = np.empty(len(waves))
    decisions = np.empty(len(waves), np.int64)
    for machine in sorted(set(machines)):
      rows = np.array([i for i, m in enumerate(machines) if m == machine])
      reference = self.references[machine]
      scores[rows] = reference.score({k: v[rows] for k, v in features.items()},
                                     [sections[i] for i in rows])
      decisions[rows] = scores[rows] > reference.threshold
    return Scores(scores, decisions)

  def score(self, inputs, machine: str | None = None, section: str | None = None,
            progress: bool = False) -> Scores:
    """Scores of WAV files (a path or a list of paths; machine type and section from their
    names and folders unless given), or of waves at 16 kHz (an array [B, 2, S] or a list of
    [2, S] arrays; machine and section required). Files are read CHUNK_CLIPS at a time. A clip
    too short for the clip banks or with NaN/Inf samples is a ValueError naming it."""
    from asd_jax.data import pipeline
    if isinstance(inputs, (str, os.PathLike)):
      inputs = [inputs]
    elif not isinstance(inputs, np.ndarray):
      inputs = list(inputs)  # an iterator (a glob) is read once
    if isinstance(inputs, np.ndarray) or any(isinstance(x, np.ndarray) for x in inputs):
      return self._score_given_waves(inputs, machine, section)
    paths = [os.fspath(p) for p in inputs]
    keys = [clip_key(p, machine, section) for p in paths]
    for path, (m, s) in zip(paths, keys):
      self.check(m, s, path)
    from tqdm import tqdm
    parts = []
    for start in tqdm(range(0, len(paths), CHUNK_CLIPS), desc='score', unit='chunk',
                      disable=not progress or len(paths) <= CHUNK_CLIPS):
      chunk = slice(start, start + CHUNK_CLIPS)
      waves = [pipeline.read_wave(p, self.config.data.mono) for p in paths[chunk]]
      for path, wave in zip(paths[chunk], waves):
        self.check_wave(wave, path)
      parts.append(self.score_waves(waves, [k[0] for k in keys[chunk]],
                                    [k[1] for k in keys[chunk]]))
    if not parts:
      return Scores(np.empty(0), np.empty(0, np.int64))
    return Scores(np.concatenate([p.scores for p in parts]),
                  np.concatenate([p.decisions for p in parts]))

  def _score_given_waves(self, waves, machine: str | None, section: str | None) -> Scores:
    if machine is None or section is None:
      raise ValueError('scoring waves needs machine= and section=')
    if isinstance(waves, np.ndarray):
      if waves.ndim != 3 or waves.shape[1] != 2:
        raise ValueError(f'waves must be [B, 2, samples], got shape {waves.shape}')
    else:
      for i, wave in enumerate(waves):
        if not isinstance(wave, np.ndarray) or wave.ndim != 2 or wave.shape[0] != 2:
          raise ValueError(f'waves[{i}] must be a [2, samples] array, got '
                           f'{getattr(wave, "shape", type(wave).__name__)}')
    self.check(machine, section, 'waves')
    for i, wave in enumerate(waves):
      self.check_wave(wave, f'waves[{i}]')
    return self.score_waves(list(waves), [machine] * len(waves), [section] * len(waves))


def clip_key(path: str, machine: str | None = None, section: str | None = None
             ) -> tuple[str, str]:
  """(machine type, section) of a clip: the flags where given, else the section_<ss>_ that
  starts every DCASE name (the rest of the name may be anything) and the folder
  (<machine>/<split>/<file>)."""
  if section is None:
    match = SECTION_PREFIX.match(os.path.basename(path))
    if not match:
      raise ValueError(f'{path}: its name does not start with section_<ss>_ to take the section '
                       'from; give --section')
    section = match[1]
  if machine is None:
    machine = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path))))
  return machine, section
