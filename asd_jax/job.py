"""`asd-jax run`: the whole job, stage by stage, each skipped while nothing it was made from
changed (provenance.py), and otherwise redone with everything downstream of it.

synth (without --data_dir) -> pre-train tiny encoders (only branches configured without a
checkpoint) -> train each branch -> embed (two-channel, left-duplicated) ->
official AE baselines -> log-mel reference -> score task2_1..task2_4 -> evaluate (where labels
are known):
W/submission/<system>/*.csv, W/results.{md,csv}, W/evaluation/<system>_result.csv (the
official evaluator's layout), W/plots/, W/timings.json (seconds per stage), W/memory.json (the
job process's peak resident MB per stage).
Several JAX processes (multi-host) train and embed together; process 0 alone then scores and
writes the shared outputs.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import time

import jax
import numpy as np

from asd_jax import footprint, memory, provenance
from asd_jax.audio import logmel as logmel_lib
from asd_jax import workdir as workdir_lib
from asd_jax.data import audio_check, layout, synthetic
from asd_jax.data.ground_truth import SectionTruth
from asd_jax.evaluation import evaluate as evaluate_lib
from asd_jax.evaluation import plots, report, submission
from asd_jax.inference import embed
from asd_jax.io import WorkdirError, atomic_write_bytes, atomic_write_text
from asd_jax.model.asd_model import CHANNEL_MODES
from asd_jax.scoring import clip_banks
from asd_jax.scoring import systems as systems_lib
from asd_jax.scoring.calibration import gamma_threshold
from asd_jax.train import loop, pretrain

MAIN_SYSTEM = 'task2_1'
BASELINES = ('baseline_mse', 'baseline_mahalanobis')
REFERENCE = 'reference_logmel'


class Job:
  """The stages of one workdir. Each stage asks the ledger (provenance.py) whether what it was
  made from changed, says so in one line, and is skipped, continued or redone."""

  def __init__(self, config, workdir: str, progress: bool = True, strict: bool = True):
    self.config = config
    self.strict = strict  # bad input files stop the job; False leaves them out
    self.workdir = os.path.abspath(workdir)
    self.progress = progress
    self.timings: dict[str, float] = {}
    self.peak_rss_mb: dict[str, int] = {}
    # The baselines' log-mel statistics of each clip, kept for the reference stage: one array
    # (rows by clip path), not an array a clip, which would pin freed heap between them.
    self._reference_rows: dict[str, int] = {}
    self._reference_features = np.empty((0, 0))
    memory.keep_heap_compact()
    self.ledger = provenance.Ledger(self.workdir, config, writer=jax.process_index() == 0)
    self.synthetic = False  # the built-in dataset, made in W/data
    if jax.process_count() > 1:  # every process takes the same decisions on the same records
      from jax.experimental import multihost_utils
      self.ledger.sync = multihost_utils.sync_global_devices

  @contextlib.contextmanager
  def stage(self, name: str):
    print(f'== {name}', flush=True)
    memory.reset_peak()
    start = time.perf_counter()
    yield
    self.timings[name] = round(time.perf_counter() - start, 1)
    self.peak_rss_mb[name] = memory.peak_rss_mb()

  def submission_dir(self, system: str) -> str:
    return os.path.join(self.workdir, 'submission', system)

  # --- what each stage consumes -------------------------------------------------------------

  def plan(self, manifest) -> dict[str, list[str]]:
    """Every stage of `run` in order -> the stages whose outputs it consumes."""
    c = self.config
    data = ['synth'] if self.synthetic else []  # the built-in data, made by the run itself
    stages = {'synth': []} if self.synthetic else {}
    stages['check audio'] = data
    pretrained = [b for b in c.branches if pretrain.uses_pretraining(c, b)]
    stages.update({f'pretrain {b}': data for b in pretrained})
    stages.update({f'train {b}': [f'pretrain {b}'] if b in pretrained else data
                   for b in c.branches})
    stages.update({f'embed {b}': [f'train {b}'] for b in c.branches})
    if c.baseline.epochs:
      stages['baselines'] = data
    stages['reference'] = data
    stages['score'] = [f'embed {b}' for b in c.branches]
    if ground_truth(manifest):
      stages['evaluate'] = [s for s in ('baselines', 'reference', 'score') if s in stages]
    return stages

  def inputs(self, name: str, manifest) -> dict[str, str]:
    """What a stage is made from besides the config it reads and the weights it loads: its
    clips and the identities of the stages it consumes."""
    if name == 'synth':
      return {}
    training = name.split()[0] in ('pretrain', 'train')
    clips = loop.train_clips(manifest) if training else manifest.clips
    inputs = {'clips': provenance.clips_identity(clips)}
    if name == 'evaluate':
      inputs['labels'] = labels_identity(manifest)
    inputs.update({u: self.ledger.identity(u) for u in self.plan(manifest).get(name, [])})
    return inputs

  def verdict(self, name: str, manifest, **kwargs) -> provenance.Verdict:
    verdict = self.ledger.verdict(name, self.inputs(name, manifest), **kwargs)
    print(verdict.line(), flush=True)
    return verdict

  def recording(self, verdict: provenance.Verdict, outputs=()):
    """Records the stage; a stage that starts again first removes what its last run wrote."""
    if verdict.record and not verdict.continues:
      if jax.process_index() == 0:
        for path in verdict.record['outputs']:
          remove(os.path.join(self.workdir, path))
      if self.ledger.sync:
        self.ledger.sync(f'cleared {verdict.stage}')
    return self.ledger.recording(verdict, outputs)

  def status(self, manifest) -> list[tuple[str, str]]:
    """[(stage, 'done' | 'missing' | 'stale: why')] without running anything."""
    lines, redone = [], set()
    for name, consumed in self.plan(manifest).items():
      verdict = self.ledger.verdict(name, self.inputs(name, manifest))
      waits = [u for u in consumed if u in redone]
      if verdict.done and waits:
        lines.append((name, f'stale: {", ".join(waits)} will be redone'))
      elif verdict.done:
        lines.append((name, 'done'))
      elif verdict.state == 'missing':
        lines.append((name, 'missing'))
      else:
        lines.append((name, f'stale: {verdict.action}'))
      if not verdict.done or waits:
        redone.add(name)
    return lines

  # --- stages -------------------------------------------------------------------------------

  def dataset(self, data_dir: str | None) -> layout.Manifest:
    if data_dir is None and jax.process_count() > 1:
      raise layout.DatasetError('several processes need --data_dir (write the built-in dataset '
                                'once with `asd-jax synth --output_dir=D`)')
    if data_dir is None:
      data_dir = os.path.join(self.workdir, 'data')
      self.synthetic = True
      with self.stage('synth'):
        verdict = self.verdict('synth', None)
        if not verdict.done:
          with self.recording(verdict, [data_dir]) as run:
            remove(data_dir)
            from tqdm import tqdm
            count = synthetic.generate(data_dir, synthetic.SynthConfig(seed=run.config.seed),
                                       progress=lambda clips, total: tqdm(
                                           clips, total=total, desc='synth', unit='clip',
                                           disable=not self.progress))
          print(f'wrote {count} clips to {data_dir}')
    with self.stage('check audio'):
      manifest = layout.checked_dataset(data_dir, self.strict, self.progress,
                                        find_bad=self.bad_audio)
    if manifest.problems:
      print(manifest.skipped_report())
    return manifest

  def scanned_dataset(self, data_dir: str) -> layout.Manifest:
    """The dataset as this workdir's runs saw it, without decoding a clip: scanned, less the
    clips its audio check left out (a --nostrict run's)."""
    manifest = layout.scan_dataset(data_dir, strict=False)
    checked = self.ledger.load('check audio')
    bad = located_problems(manifest, checked['result']) if checked else {}
    return layout.without_bad_audio(manifest, bad, False)

  def check_footprint(self, manifest, max_hours: float = 0.0) -> None:
    """Says what the run will take (footprint.py); stops here if the disk or max_hours is
    short. Space the workdir's earlier outputs hold counts as free: a redo replaces them."""
    estimate = footprint.estimate(self.config, manifest, self.workdir,
                                  reusable=workdir_lib.output_bytes(self.workdir))
    print(estimate.line(self.workdir), flush=True)
    footprint.check(estimate, self.workdir, max_hours)

  def bad_audio(self, manifest: layout.Manifest) -> dict[str, str]:
    """{path: problem line} of the clips whose samples are bad (NaN/Inf, all zero); every clip
    is decoded once, and the verdicts kept for unchanged files, by name below the dataset root
    (a moved dataset keeps them, as its clips' identity does)."""
    verdict = self.verdict('check audio', manifest)
    if not verdict.done:
      with self.recording(verdict) as run:
        found = audio_check.content_problems([c.path for c in manifest.clips], self.progress)
        run.result = {os.path.relpath(path, manifest.root): line[len(path) + 2:]
                      for path, line in found.items()}
      return located_problems(manifest, run.result)
    return located_problems(manifest, verdict.record['result'])

  def pretrain(self, manifest) -> None:
    """Self-supervised pre-training of the branches without a converted checkpoint."""
    with self.stage('pretrain'):
      for branch in self.config.branches:
        if not pretrain.uses_pretraining(self.config, branch):
          print(f'{branch}: encoder from {self.config[branch].checkpoint or "random init"}')
          continue
        name = f'pretrain {branch}'
        verdict = self.verdict(name, manifest)
        if verdict.done:
          continue
        if jax.process_count() > 1:
          raise WorkdirError(f'{branch}: the tiny encoder is pre-trained in one process; run '
                             '`asd-jax run` (or train) once without --config.train.distributed '
                             'on this workdir first, or give the branch a converted checkpoint')
        with self.recording(verdict,
                            [pretrain.pretrained_dir(self.workdir, branch)]) as run:
          loop.pretrain_branch(run.config, branch, manifest, self.workdir, self.progress)

  def train(self, manifest) -> None:
    """Each branch trained, continued (an interrupted run, or only train.steps raised) or
    skipped; a branch trained under another config is moved to W/superseded/ and starts anew."""
    with self.stage('train'):
      for branch in self.config.branches:
        name = f'train {branch}'
        verdict = self.verdict(name, manifest, extendable=('train.steps',))
        if verdict.done:
          continue
        out_dir = loop.branch_dir(self.workdir, branch)
        if not verdict.continues and jax.process_index() == 0:
          moved = workdir_lib.set_aside(self.workdir, out_dir, name)
          if moved:
            print(f'{name}: the earlier checkpoints moved to {moved}')
        with self.recording(verdict, [out_dir]) as run:
          summary = loop.train_branch(run.config, branch, manifest, self.workdir, self.progress,
                                      on_progress=run.save_partial)
        print(f'{branch}: {loop.describe(summary)}')

  def embed(self, manifest) -> dict:
    """{(bank, mode): [n_clips, E]} for every trained branch and both channel modes; a bank is
    a branch's embedding or one of its clip banks (clip_banks.bank_name). Process 0 holds them
    memory-mapped from W/embeddings: the stages between this one and scoring leave them on disk
    (at 20 480 clips they are 140 MB)."""
    out = {}
    with self.stage('embed'):
      for branch in self.config.branches:
        name = f'embed {branch}'
        branch_banks = clip_banks.of_branch(self.config.score.clip_banks, branch)
        banks = [(clip_banks.bank_name(branch, bank), mode)
                 for bank in [None, *(b.name for b in branch_banks)] for mode in CHANNEL_MODES]
        paths = {bank: os.path.join(self.workdir, 'embeddings', '{}_{}.npy'.format(*bank))
                 for bank in banks}
        verdict = self.verdict(name, manifest)
        if verdict.done:
          out.update({bank: np.load(path, mmap_mode='r') for bank, path in paths.items()})
          continue
        with self.recording(verdict, list(paths.values())) as run:
          c = run.config
          model, params = loop.load_for_inference(c, branch, manifest, self.workdir)
          values = embed.extract(model, params, manifest.clips,
                                 loop.audio_config(c), c.embed.batch_size,
                                 clip_banks.of_branch(c.score.clip_banks, branch),
                                 c.data.num_workers, self.progress)
          while values:
            (output, mode), array = values.popitem()
            bank = (clip_banks.output_bank(branch, output), mode)
            if jax.process_index() == 0:
              atomic_write_bytes(paths[bank], npy_bytes(array))
              array = np.load(paths[bank], mmap_mode='r')
            out[bank] = array
    return out

  def write_system(self, name: str, manifest, per_machine: dict) -> None:
    """per_machine: {machine: (test scores, threshold)} in the order of the test clips."""
    for machine, (scores, threshold) in per_machine.items():
      test = manifest.select(machine=machine, split='test')
      for section in sorted({c.section for c in test}):
        rows = [i for i, c in enumerate(test) if c.section == section]
        submission.write_section(self.submission_dir(name), machine, section,
                                 [test[i].file_name for i in rows], scores[rows],
                                 scores[rows] > threshold)

  def score(self, manifest, embeddings) -> list[str]:
    with self.stage('score'):
      verdict = self.verdict('score', manifest)
      if verdict.done:
        return verdict.record['result']
      with self.recording(verdict) as run:
        scorer = systems_lib.SystemScorer(manifest.clips, embeddings, run.config.score)
        run.result = []
        for system in systems_lib.presets(run.config.score):
          if not scorer.available(system):
            print(f'{system.name}: skipped (needs branches {system.branches})')
            continue
          per_machine = {}
          for machine in manifest.machines:
            scores = scorer.score(system, machine)
            per_machine[machine] = (scores.test, scores.threshold)
          self.write_system(system.name, manifest, per_machine)
          run.result.append(system.name)
        run.outputs = [self.submission_dir(s) for s in run.result]
    return run.result

  def baseline_log_mel(self, config, clip) -> np.ndarray:
    """[128, T] log-mel of the clip's baseline channel. Its per-bin statistics, the log-mel
    reference's features, are kept (256 numbers a clip), so the reference stage needs no second
    pass over the audio."""
    frames = logmel_lib.clip_log_mel(clip.path, config.baseline.channel, config.data.mono)
    self._reference_features[self._reference_rows[clip.path]] = logmel_lib.frame_statistics(
        frames)
    return frames

  def keep_reference_features(self, manifest) -> None:
    """Makes room for the log-mel statistics of every clip (`baseline_log_mel` fills it)."""
    self._reference_rows = {clip.path: i for i, clip in enumerate(manifest.clips)}
    self._reference_features = np.full((len(manifest.clips), 2 * logmel_lib.N_MELS), np.nan)

  def reference_features(self, config, clips) -> np.ndarray:
    """[n, 256] log-mel reference features of the clips: kept from the baselines, else read."""
    from asd_jax.baselines import logmel_reference
    channel, mono = config.baseline.channel, config.data.mono
    out = np.empty((len(clips), 2 * logmel_lib.N_MELS))
    for i, clip in enumerate(clips):
      row = self._reference_rows.get(clip.path)
      kept = None if row is None else self._reference_features[row]
      out[i] = (kept if kept is not None and not np.isnan(kept[0])
                else logmel_reference.clip_features(clip.path, channel, mono))
    return out

  def baseline_machine(self, config, manifest, machine: str) -> tuple[dict, dict]:
    """One machine type's AE: trained on its normal clips, then ({machine: (test MSE scores,
    threshold)}, the same for selective Mahalanobis). Clip by clip: the training log-mels wait
    in a file (frame_store.py), the test clips are scored as they are read."""
    from asd_jax.baselines import autoencoder, frame_store
    c = config.baseline
    store = frame_store.FrameStore(os.path.join(self.baseline_cache, f'{machine}.f32'))
    try:
      for clip in manifest.select(machine=machine, split='train'):
        store.append(self.baseline_log_mel(config, clip), clip.domain, clip.path)
      ae = autoencoder.train_autoencoder(store, c.epochs, c.batch_size, c.learning_rate,
                                         config.seed)
      ref = np.empty((len(store), 2))
      for i in range(len(store)):
        ref[i] = ae.scores(store.clip_vectors(i))
    finally:
      store.close()
    test = manifest.select(machine=machine, split='test')
    got = np.empty((len(test), 2))
    for i, clip in enumerate(test):
      got[i] = ae.scores(autoencoder.stacked_vectors(self.baseline_log_mel(config, clip),
                                                     clip.path))
    mse, maha = ({machine: (got[:, column], gamma_threshold(
        ref[:, column], config.score.decision_quantile))} for column in (0, 1))
    return mse, maha

  @property
  def baseline_cache(self) -> str:
    """Where the baselines' training log-mels wait while their AEs train (emptied after)."""
    return os.path.join(self.workdir, 'baseline_frames')

  def baselines(self, manifest) -> list[str]:
    outputs = [self.submission_dir(s) for s in BASELINES]
    with self.stage('baselines'):
      if self.config.baseline.epochs == 0:
        print('baselines: skipped (config.baseline.epochs=0)')
        for path in outputs + [self.ledger.path('baselines')]:
          remove(path)
        return []
      verdict = self.verdict('baselines', manifest)
      if verdict.done:
        return list(BASELINES)
      from tqdm import tqdm
      mse, maha = {}, {}
      with self.recording(verdict, outputs) as run:
        # One AE per machine type, several at once: this network's small matmuls keep about
        # one core busy each, so threads (JAX releases the GIL) train them side by side.
        threads = run.config.baseline.concurrent_machines or os.cpu_count() or 1
        remove(self.baseline_cache)  # an interrupted run's files
        os.makedirs(self.baseline_cache)
        self.keep_reference_features(manifest)
        with concurrent.futures.ThreadPoolExecutor(min(threads, len(manifest.machines))) as pool:
          futures = [pool.submit(self.baseline_machine, run.config, manifest, m)
                     for m in manifest.machines]
          for future in tqdm(concurrent.futures.as_completed(futures), total=len(futures),
                             desc='baseline AE', unit='machine', disable=not self.progress):
            machine_mse, machine_maha = future.result()
            mse.update(machine_mse)
            maha.update(machine_maha)
        remove(self.baseline_cache)
        self.write_system('baseline_mse', manifest, mse)
        self.write_system('baseline_mahalanobis', manifest, maha)
    return list(BASELINES)

  def reference(self, manifest) -> list[str]:
    """The log-mel Mahalanobis reference detector (no training; seconds), on the near field."""
    from asd_jax.baselines import logmel_reference
    with self.stage('reference'):
      verdict = self.verdict('reference', manifest)
      if verdict.done:
        return [REFERENCE]
      with self.recording(verdict, [self.submission_dir(REFERENCE)]) as run:
        c = run.config
        per_machine = {}
        for machine in manifest.machines:
          ref, test = logmel_reference.reference_scores(
              manifest.select(machine=machine, split='train'),
              manifest.select(machine=machine, split='test'),
              folds=c.score.mahalanobis_folds,
              features=lambda clips: self.reference_features(c, clips))
          per_machine[machine] = (test, gamma_threshold(ref, c.score.decision_quantile))
        self.write_system(REFERENCE, manifest, per_machine)
    return [REFERENCE]

  def evaluate(self, manifest, systems: list[str]) -> str | None:
    truth = ground_truth(manifest)
    if not truth:
      print('no labelled test clips: submission written, nothing to evaluate')
      return None
    with self.stage('evaluate'):
      verdict = self.verdict('evaluate', manifest)
      if verdict.done:
        return verdict.record['result']
      plotted = MAIN_SYSTEM in systems  # the plots are the main system's
      names = ('results.md', 'results.csv', 'evaluation') + (('plots',) if plotted else ())
      outputs = [os.path.join(self.workdir, name) for name in names]
      with self.recording(verdict, outputs) as run:
        results = {s: evaluate_lib.evaluate_submission(self.submission_dir(s), truth)
                   for s in systems}
        report.write_results(results, outputs[0], outputs[1], preamble='# Results (%)\n\n')
        for system, result in results.items():
          report.write_official_csv(os.path.join(outputs[2], f'{system}_result.csv'), result)
        if plotted:
          scores = submission.read_scores(self.submission_dir(MAIN_SYSTEM))
          for (machine, section), section_truth in sorted(truth.items()):
            clips = section_truth.clips
            names = sorted(clips)
            plots.plot_machine(os.path.join(outputs[3], f'{machine}_{section}'),
                               f'{machine} section {section} ({MAIN_SYSTEM})',
                               [clips[n][0] for n in names],
                               [scores[machine, section][n] for n in names],
                               [clips[n][1] for n in names])
        run.result = report.text_table(results)
      return run.result


def remove(path: str) -> None:
  """Deletes a file or folder if it is there."""
  if os.path.isdir(path):
    shutil.rmtree(path)
  elif os.path.exists(path):
    os.remove(path)


def npy_bytes(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  np.save(buffer, array)
  return buffer.getvalue()


def located_problems(manifest: layout.Manifest, recorded: dict[str, str]) -> dict[str, str]:
  """The check audio stage's record ({name below the dataset root: problem}) as
  {path: 'path: problem'} of the manifest's clips."""
  paths = {os.path.relpath(c.path, manifest.root): c.path for c in manifest.clips}
  return {paths[name]: f'{paths[name]}: {problem}' for name, problem in recorded.items()
          if name in paths}


def labels_identity(manifest) -> str:
  """Digest of the test clips' known labels and domains (names or ground-truth files), the
  clips named as provenance.clips_identity names them."""
  test = [c for c in manifest.clips if c.split == 'test']
  rows = sorted(f'{name}|{c.label}|{c.domain}'
                for c, name in zip(test, provenance.names_below_common_folder(test)))
  digest = hashlib.sha1('\n'.join(rows).encode()).hexdigest()
  return f'{len(rows)} test clips #{digest[:16]}'



def ground_truth(manifest) -> dict:
  """{(machine, section): SectionTruth} for sections whose test clips all have labels and
  domains (from their names or the dataset's ground truth); unlabelled sections are left out."""
  clips: dict = {}
  complete: dict = {}
  folder: dict = {}
  for clip in manifest.clips:
    if clip.split != 'test':
      continue
    key = (clip.machine, clip.section)
    folder[key] = os.path.dirname(clip.path)
    known = clip.label is not None and clip.domain is not None
    complete[key] = complete.get(key, True) and known
    if known:
      clips.setdefault(key, {})[clip.file_name] = (int(clip.label == 'anomaly'), clip.domain)
  return {k: SectionTruth(*k, folder[k], v) for k, v in clips.items() if complete[k]}


@contextlib.contextmanager
def held(config, workdir: str, progress: bool = True, strict: bool = True):
  """A Job on a workdir made writable and held by this run (process 0 holds it for all the
  processes of a multi-host run), with W/config.json the config it runs."""
  path = workdir_lib.prepare(workdir)
  holding = workdir_lib.claimed(path) if jax.process_index() == 0 else contextlib.nullcontext()
  with holding:
    if jax.process_index() == 0:
      workdir_lib.write_config(path, config)
    yield Job(config, path, progress, strict)


def run_job(config, data_dir: str | None, workdir: str, progress: bool = True,
            strict: bool = True, max_hours: float = 0.0) -> Job:
  with held(config, workdir, progress, strict) as job:
    return _run(job, data_dir, max_hours)


def train_only(config, data_dir: str, workdir: str, progress: bool = True,
               strict: bool = True) -> Job:
  """`asd-jax train`: the run's stages up to training, with the same records."""
  with held(config, workdir, progress, strict) as job:
    manifest = job.dataset(data_dir)
    job.pretrain(manifest)
    job.train(manifest)
    for branch in config.branches:
      print(f'{branch}: {loop.branch_dir(job.workdir, branch)}')
    return job


def _run(job: Job, data_dir: str | None, max_hours: float = 0.0) -> Job:
  start = time.perf_counter()
  manifest = job.dataset(data_dir)
  job.check_footprint(manifest, max_hours)
  job.pretrain(manifest)
  job.train(manifest)
  embeddings = job.embed(manifest)
  if jax.process_index() != 0:
    print(f'process {jax.process_index()}: trained and embedded; process 0 scores and writes '
          'the outputs')
    return job
  job.ledger.sync = None  # from here on process 0 works alone
  systems = job.baselines(manifest)
  systems += job.reference(manifest)
  systems += job.score(manifest, embeddings)
  table = job.evaluate(manifest, systems)
  job.timings['total'] = round(time.perf_counter() - start, 1)
  atomic_write_text(os.path.join(job.workdir, 'timings.json'), json.dumps(job.timings, indent=2))
  atomic_write_text(os.path.join(job.workdir, 'memory.json'),
                    json.dumps(job.peak_rss_mb, indent=2))
  if table:
    print('\n' + table + '\n')
  print(f'submission folders: {os.path.join(job.workdir, "submission")}/<system>')
  if table:
    print(f'results: {job.workdir}/results.md, results.csv; plots: {job.workdir}/plots/')
  print('stage times (s): ' + ', '.join(f'{k} {v}' for k, v in job.timings.items()))
  logging.info('timings %s', job.timings)
  return job
