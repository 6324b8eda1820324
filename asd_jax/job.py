"""`asd-jax run`: the whole job, stage by stage, each skipped when its outputs are complete.

synth (without --data_dir) -> pre-train tiny encoders (only branches configured without a
checkpoint) -> train each branch -> embed (two-channel, left-duplicated) ->
official AE baselines -> log-mel reference -> score task2_1..task2_4 -> evaluate (where labels
are known):
W/submission/<system>/*.csv, W/results.{md,csv}, W/evaluation/<system>_result.csv (the
official evaluator's layout), W/plots/, W/timings.json.
Several JAX processes (multi-host) train and embed together; process 0 alone then scores and
writes the shared outputs.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import time

import jax
import numpy as np

from asd_jax.data import audio_check, layout, synthetic
from asd_jax.data.ground_truth import SectionTruth
from asd_jax.evaluation import evaluate as evaluate_lib
from asd_jax.evaluation import plots, report, submission
from asd_jax.inference import embed
from asd_jax.io import atomic_write_text
from asd_jax.model.asd_model import CHANNEL_MODES
from asd_jax.scoring import clip_banks
from asd_jax.scoring import systems as systems_lib
from asd_jax.scoring.calibration import gamma_threshold
from asd_jax.train import loop

MAIN_SYSTEM = 'task2_1'
BASELINES = ('baseline_mse', 'baseline_mahalanobis')
REFERENCE = 'reference_logmel'


class Job:
  def __init__(self, config, workdir: str, progress: bool = True, strict: bool = True):
    self.config = config
    self.strict = strict  # bad input files stop the job; False leaves them out
    self.workdir = os.path.abspath(workdir)
    self.progress = progress
    self.timings: dict[str, float] = {}
    self._reference_features: dict[str, np.ndarray] = {}  # clip path -> log-mel statistics

  @contextlib.contextmanager
  def stage(self, name: str):
    print(f'== {name}', flush=True)
    start = time.perf_counter()
    yield
    self.timings[name] = round(time.perf_counter() - start, 1)

  def _marker(self, name: str) -> str:
    return os.path.join(self.workdir, 'stages', f'{name}.done')

  def done(self, name: str, identity: str) -> bool:
    path = self._marker(name)
    return os.path.exists(path) and open(path).read() == identity

  def mark(self, name: str, identity: str) -> None:
    atomic_write_text(self._marker(name), identity)

  def submission_dir(self, system: str) -> str:
    return os.path.join(self.workdir, 'submission', system)

  # --- stages -------------------------------------------------------------------------------

  def dataset(self, data_dir: str | None) -> layout.Manifest:
    if data_dir is None and jax.process_count() > 1:
      raise layout.DatasetError('several processes need --data_dir (write the built-in dataset '
                                'once with `asd-jax synth --output_dir=D`)')
    if data_dir is None:
      data_dir = os.path.join(self.workdir, 'data')
      with self.stage('synth'):
        if os.path.isdir(data_dir):
          print(f'using the synthetic dataset already in {data_dir}')
        else:
          from tqdm import tqdm
          count = synthetic.generate(data_dir, synthetic.SynthConfig(seed=self.config.seed),
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

  def bad_audio(self, manifest: layout.Manifest) -> dict[str, str]:
    """{path: problem} of the clips whose samples are bad (NaN/Inf, all zero); every clip is
    decoded once, and the verdicts kept in W/stages/ for unchanged files."""
    record = self._marker('check_audio')
    identity = embed.inputs_identity(manifest.clips, ['check_audio'])
    if os.path.exists(record):
      with open(record) as f:
        saved = json.load(f)
      if saved['identity'] == identity:
        return saved['bad']
    bad = audio_check.content_problems([c.path for c in manifest.clips], self.progress)
    if jax.process_index() == 0:
      atomic_write_text(record, json.dumps({'identity': identity, 'bad': bad}))
    return bad

  def pretrain(self, manifest) -> None:
    """Self-supervised pre-training of the branches without a converted checkpoint."""
    with self.stage('pretrain'):
      for branch in self.config.branches:
        if not loop.pretrain_branch(self.config, branch, manifest, self.workdir, self.progress):
          print(f'{branch}: encoder from {self.config[branch].checkpoint or "random init"}')

  def train(self, manifest) -> None:
    with self.stage('train'):
      for branch in self.config.branches:
        summary = loop.train_branch(self.config, branch, manifest, self.workdir, self.progress)
        print(f'{branch}: {loop.describe(summary)}')

  def embed(self, manifest) -> dict:
    """{(bank, mode): [n_clips, E]} for every trained branch and both channel modes; a bank is
    a branch's embedding or one of its clip banks (clip_banks.bank_name)."""
    out = {}
    audio = loop.audio_config(self.config)
    with self.stage('embed'):
      for branch in self.config.branches:
        trained = loop.load_trained(self.config, branch, manifest, self.workdir)
        step = int(trained.state.step)
        branch_banks = clip_banks.of_branch(self.config.score.clip_banks, branch)
        keys = [(output, mode) for output in ['embedding', *(b.name for b in branch_banks)]
                for mode in CHANNEL_MODES]
        banks = {(output, mode): (clip_banks.bank_name(
            branch, None if output == 'embedding' else output), mode) for output, mode in keys}
        paths = {k: os.path.join(self.workdir, 'embeddings', '{}_{}.npz'.format(*banks[k]))
                 for k in keys}
        identities = {k: embed.embedding_identity(manifest.clips, step, audio, k[1])
                      for k in keys}
        cached = {k: embed.load_cached(paths[k], identities[k]) for k in keys}
        if any(v is None for v in cached.values()):
          cached = embed.extract(trained.model, trained.params, manifest.clips, audio,
                                 self.config.embed.batch_size, branch_banks,
                                 self.config.data.num_workers, self.progress)
          for k in keys:
            embed.write_cached(paths[k], identities[k], cached[k])
        out.update({banks[k]: cached[k] for k in keys})
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
    written = []
    with self.stage('score'):
      scorer = systems_lib.SystemScorer(manifest.clips, embeddings, self.config.score)
      for system in systems_lib.presets(self.config.score):
        if not scorer.available(system):
          print(f'{system.name}: skipped (needs branches {system.branches})')
          continue
        per_machine = {}
        for machine in manifest.machines:
          scores = scorer.score(system, machine)
          per_machine[machine] = (scores.test, scores.threshold)
        self.write_system(system.name, manifest, per_machine)
        written.append(system.name)
    return written

  def baseline_log_mels(self, clips) -> list[np.ndarray]:
    """The baselines' log-mel of each clip's baseline channel. Their per-bin statistics, the
    log-mel reference's features, are kept (256 numbers a clip), so the reference stage needs
    no second pass over the audio."""
    from asd_jax.audio import logmel
    c = self.config.baseline
    frames = [logmel.clip_log_mel(clip.path, c.channel, self.config.data.mono) for clip in clips]
    for clip, f in zip(clips, frames):
      self._reference_features[clip.path] = logmel.frame_statistics(f)
    return frames

  def reference_features(self, clips) -> np.ndarray:
    """[n, 256] log-mel reference features of the clips: kept from the baselines, else read."""
    from asd_jax.baselines import logmel_reference
    c = self.config.baseline
    return np.stack([self._reference_features[clip.path] if clip.path in self._reference_features
                     else logmel_reference.clip_features(clip.path, c.channel,
                                                         self.config.data.mono)
                     for clip in clips])

  def baseline_machine(self, manifest, machine: str) -> tuple[dict, dict]:
    """One machine type's AE: trained on its normal clips, then ({machine: (test MSE scores,
    threshold)}, the same for selective Mahalanobis)."""
    from asd_jax.baselines import autoencoder
    c = self.config.baseline
    train = manifest.select(machine=machine, split='train')
    test = manifest.select(machine=machine, split='test')
    vectors = [autoencoder.stacked_vectors(f, x.path)
               for x, f in zip(train, self.baseline_log_mels(train))]
    domains = np.concatenate([[x.domain] * len(v) for x, v in zip(train, vectors)])
    ae = autoencoder.train_autoencoder(np.concatenate(vectors), domains, c.epochs,
                                       c.batch_size, c.learning_rate, self.config.seed)
    ref = np.array([ae.scores(v) for v in vectors])
    got = np.array([ae.scores(autoencoder.stacked_vectors(f, x.path))
                    for x, f in zip(test, self.baseline_log_mels(test))])
    mse, maha = ({machine: (got[:, column], gamma_threshold(
        ref[:, column], self.config.score.decision_quantile))} for column in (0, 1))
    return mse, maha

  def baselines(self, manifest, identity: str) -> list[str]:
    with self.stage('baselines'):
      if self.config.baseline.epochs == 0:
        print('baselines: skipped (config.baseline.epochs=0)')
        return []
      if self.done('baselines', identity):
        print('baselines: already scored')
        return list(BASELINES)
      from tqdm import tqdm
      mse, maha = {}, {}
      # One AE per machine type, several at once: this network's small matmuls keep about one
      # core busy each, so threads (JAX releases the GIL) train them side by side.
      threads = self.config.baseline.concurrent_machines or os.cpu_count() or 1
      with concurrent.futures.ThreadPoolExecutor(min(threads, len(manifest.machines))) as pool:
        futures = [pool.submit(self.baseline_machine, manifest, m) for m in manifest.machines]
        for future in tqdm(concurrent.futures.as_completed(futures), total=len(futures),
                           desc='baseline AE', unit='machine', disable=not self.progress):
          machine_mse, machine_maha = future.result()
          mse.update(machine_mse)
          maha.update(machine_maha)
      self.write_system('baseline_mse', manifest, mse)
      self.write_system('baseline_mahalanobis', manifest, maha)
      self.mark('baselines', identity)
    return list(BASELINES)

  def reference(self, manifest) -> list[str]:
    """The log-mel Mahalanobis reference detector (no training; seconds), on the near field."""
    from asd_jax.baselines import logmel_reference
    with self.stage('reference'):
      per_machine = {}
      for machine in manifest.machines:
        ref, test = logmel_reference.reference_scores(
            manifest.select(machine=machine, split='train'),
            manifest.select(machine=machine, split='test'),
            folds=self.config.score.mahalanobis_folds, features=self.reference_features)
        per_machine[machine] = (test, gamma_threshold(ref, self.config.score.decision_quantile))
      self.write_system(REFERENCE, manifest, per_machine)
    return [REFERENCE]

  def evaluate(self, manifest, systems: list[str]) -> str | None:
    truth = ground_truth(manifest)
    if not truth:
      print('no labelled test clips: submission written, nothing to evaluate')
      return None
    with self.stage('evaluate'):
      results = {s: evaluate_lib.evaluate_submission(self.submission_dir(s), truth)
                 for s in systems}
      report.write_results(results, os.path.join(self.workdir, 'results.md'),
                           os.path.join(self.workdir, 'results.csv'),
                           preamble='# Results (%)\n\n')
      for system, result in results.items():
        report.write_official_csv(
            os.path.join(self.workdir, 'evaluation', f'{system}_result.csv'), result)
      if MAIN_SYSTEM in systems:
        scores = submission.read_scores(self.submission_dir(MAIN_SYSTEM))
        for (machine, section), section_truth in sorted(truth.items()):
          clips = section_truth.clips
          names = sorted(clips)
          plots.plot_machine(os.path.join(self.workdir, 'plots', f'{machine}_{section}'),
                             f'{machine} section {section} ({MAIN_SYSTEM})',
                             [clips[n][0] for n in names],
                             [scores[machine, section][n] for n in names],
                             [clips[n][1] for n in names])
      return report.text_table(results)


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


def run_job(config, data_dir: str | None, workdir: str, progress: bool = True,
            strict: bool = True) -> Job:
  job = Job(config, workdir, progress, strict)
  start = time.perf_counter()
  manifest = job.dataset(data_dir)
  job.pretrain(manifest)
  job.train(manifest)
  embeddings = job.embed(manifest)
  if jax.process_index() != 0:
    print(f'process {jax.process_index()}: trained and embedded; process 0 scores and writes '
          'the outputs')
    return job
  recipe = {k: v for k, v in config.baseline.items() if k != 'concurrent_machines'}  # not scores
  baseline_inputs = embed.inputs_identity(
      manifest.clips, ['baseline', config.seed, config.data.mono, recipe])
  systems = job.baselines(manifest, baseline_inputs)
  systems += job.reference(manifest)
  systems += job.score(manifest, embeddings)
  table = job.evaluate(manifest, systems)
  job.timings['total'] = round(time.perf_counter() - start, 1)
  atomic_write_text(os.path.join(job.workdir, 'timings.json'), json.dumps(job.timings, indent=2))
  if table:
    print('\n' + table + '\n')
  print(f'submission folders: {os.path.join(job.workdir, "submission")}/<system>')
  if table:
    print(f'results: {job.workdir}/results.md, results.csv; plots: {job.workdir}/plots/')
  print('stage times (s): ' + ', '.join(f'{k} {v}' for k, v in job.timings.items()))
  logging.info('timings %s', job.timings)
  return job
