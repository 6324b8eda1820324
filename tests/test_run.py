"""`asd-jax run` end to end on a tiny synthetic dataset: outputs, resume, unlabelled data."""
import json
import os
import re
import shutil

import pytest

from asd_jax import footprint, job
from asd_jax import workdir as workdir_lib
from asd_jax.data import layout, synthetic
from asd_jax.configs import default

SYSTEMS = ['baseline_mahalanobis', 'baseline_mse', 'reference_logmel', 'task2_1', 'task2_2',
           'task2_3', 'task2_4']


def tiny_config(shipped_encoders: bool = False):
  """Small run; unless `shipped_encoders`, per-dataset pre-training of smaller encoders."""
  config = default.get_config()
  if not shipped_encoders:
    config.beats.checkpoint = config.audiomae.checkpoint = ''
  config.data.clip_seconds = 1.0
  config.data.num_workers = 0
  config.train.steps = 4
  config.train.batch_size = 8
  config.pretrain.steps = 3
  config.pretrain.batch_size = 4
  config.train.eval_every = 4
  config.train.checkpoint_every = 4
  config.audiomae.tiny.num_frames = 96
  config.embed.batch_size = 8
  config.baseline.epochs = 2
  return config


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('run') / 'data')
  synthetic.generate(root, synthetic.SynthConfig(machines=('fan', 'valve'), clip_seconds=1.0,
                                                 source_train=8, target_train=3,
                                                 test_per_group=3))
  return root


def test_run_writes_every_output_and_resumes(data, tmp_path, capsys):
  workdir = str(tmp_path / 'w')
  first = job.run_job(tiny_config(), data, workdir, progress=False)
  out = capsys.readouterr().out
  assert sorted(os.listdir(os.path.join(workdir, 'submission'))) == SYSTEMS
  for system in SYSTEMS:
    files = sorted(os.listdir(os.path.join(workdir, 'submission', system)))
    assert files == [f'{kind}_{m}_section_00_test.csv' for kind in ('anomaly_score',
                                                                     'decision_result')
                     for m in ('fan', 'valve')]
    with open(os.path.join(workdir, 'submission', system, files[0])) as f:
      assert len(f.read().splitlines()) == 12
  with open(os.path.join(workdir, 'results.md')) as f:
    table = f.read()
  for title in ('Baseline MSE', 'Baseline Mahalanobis', 'Log-mel reference', 'task2_1', 'task2_4',
                'All (hmean)', 'official score', 'AUC (target)'):
    assert title in table
  assert sorted(os.listdir(os.path.join(workdir, 'evaluation'))) == [
      f'{s}_result.csv' for s in SYSTEMS]
  assert sorted(os.listdir(os.path.join(workdir, 'plots'))) == [
      'fan_00_hist.png', 'fan_00_roc.png', 'valve_00_hist.png', 'valve_00_roc.png']
  assert 'official score' in out and set(first.timings) >= {'pretrain', 'train', 'embed', 'score',
                                                            'reference', 'total'}
  assert sorted(os.listdir(os.path.join(workdir, 'pretrained'))) == ['audiomae', 'beats']
  # the footprint said before the stages ran covers what they wrote; memory.json has each stage
  assert re.search(r'\n46 clips, 0\.0 h of audio \(0\.00 GB\): the run writes up to ', out)
  estimate = footprint.estimate(tiny_config(), layout.scan_dataset(data), workdir)
  assert 0 < workdir_lib.output_bytes(workdir) <= estimate.write_bytes
  with open(os.path.join(workdir, 'memory.json')) as f:
    assert set(json.load(f)) == set(first.timings) - {'total'}

  second = job.run_job(tiny_config(), data, workdir, progress=False)
  out = capsys.readouterr().out
  assert 'train beats: done, unchanged' in out and 'baselines: done, unchanged' in out
  assert second.timings['train'] < first.timings['train']
  with open(os.path.join(workdir, 'results.md')) as f:
    assert f.read() == table  # same models, same cached embeddings, same scores


def test_unlabelled_data_gets_a_submission_but_no_results(data, tmp_path, capsys):
  root = str(tmp_path / 'eval')
  shutil.copytree(data, root)
  shutil.rmtree(os.path.join(root, 'ground_truth'))
  for machine in ('fan', 'valve'):  # rename test clips the way evaluation data is named
    folder = os.path.join(root, 'dev_data/raw', machine, 'test')
    for i, name in enumerate(sorted(os.listdir(folder))):
      os.rename(os.path.join(folder, name), os.path.join(folder, f'section_00_{i:04d}.wav'))
  workdir = str(tmp_path / 'w')
  config = tiny_config()
  config.branches = ('beats',)
  job.run_job(config, root, workdir, progress=False)
  assert 'nothing to evaluate' in capsys.readouterr().out
  assert not os.path.exists(os.path.join(workdir, 'results.md'))
  assert sorted(os.listdir(os.path.join(workdir, 'submission'))) == [
      'baseline_mahalanobis', 'baseline_mse', 'reference_logmel', 'task2_4']
  with open(os.path.join(workdir, 'submission/task2_4/anomaly_score_fan_section_00_test.csv')) as f:
    assert f.readline().startswith('section_00_0000.wav,')


def test_default_config_uses_the_shipped_encoders(data, tmp_path):
  """The default starts from asd_jax/pretrained (made with the config's `tiny` sizes): no
  per-dataset pre-training stage."""
  from asd_jax.model.build import BeatsConfig, AudioMAEConfig, encoder_config
  from asd_jax.pretrained import shipped_encoder
  defaults = default.get_config()
  for branch, kind in (('beats', BeatsConfig), ('audiomae', AudioMAEConfig)):
    arch, params = encoder_config(defaults, branch)
    assert defaults[branch].checkpoint == shipped_encoder(branch) and params is not None
    assert arch == kind(**defaults[branch].tiny)
  config = tiny_config(shipped_encoders=True)
  config.embed.windows = 1
  config.baseline.epochs = 0
  workdir = str(tmp_path / 'w')
  job.run_job(config, data, workdir, progress=False)
  assert not os.path.exists(os.path.join(workdir, 'pretrained'))
  assert sorted(os.listdir(os.path.join(workdir, 'submission'))) == SYSTEMS[2:]


def test_zero_training_steps_keep_the_initial_branch(data, tmp_path):
  """config.train.steps=0 (no adaptation) writes the initial state as the branch's checkpoint:
  the embed stage reads exactly the untrained LoRA, gate, projection and heads, and a rerun
  finds it done."""
  import jax
  import numpy as np
  from asd_jax.data import layout
  from asd_jax.train import loop
  config = tiny_config(shipped_encoders=True)
  config.train.steps = 0
  manifest = layout.scan_dataset(data)
  workdir = str(tmp_path / 'w')
  assert loop.train_branch(config, 'beats', manifest, workdir, progress=False)['steps'] == 0
  loaded = loop.load_trained(config, 'beats', manifest, workdir)
  initial, _, _ = loop.initial_branch(config, 'beats', loop.label_space(manifest, workdir), 0,
                                      workdir)
  assert int(loaded.state.step) == 0
  jax.tree.map(np.testing.assert_array_equal, loaded.state.trainable, initial.state.trainable)
  assert loop.train_branch(config, 'beats', manifest, workdir, progress=False)['skipped']
