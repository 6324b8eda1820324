"""DCASE layout parsing, the synthetic dataset, and the Grain pipeline."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from asd_jax.data import labels as labels_lib
from asd_jax.data import layout, pipeline, synthetic
from tests.conftest import REPO

SMALL = synthetic.SynthConfig(machines=('fan', 'valve'), clip_seconds=2.0, source_train=6,
                              target_train=2, test_per_group=3, seed=3)


@pytest.fixture(scope='module')
def small_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('data') / 'synth')
  synthetic.generate(root, SMALL)
  return root


@pytest.fixture(scope='module')
def train_records(small_root):
  manifest = layout.scan_dataset(small_root)
  train = manifest.select(split='train')
  return train, pipeline.clip_records(train, labels_lib.LabelSpace.from_clips(train))


def test_parse_every_name_pattern():
  p = layout.parse_file_name('section_00_source_train_normal_0012_car_A1_spd_28V.wav')
  assert (p.section, p.domain, p.split, p.label, p.index) == ('00', 'source', 'train', 'normal', 12)
  assert layout.attribute_pairs(p.attribute_string) == (('car', 'A1'), ('spd', '28V'))
  p = layout.parse_file_name('section_01_target_test_anomaly_0003_noAttribute.wav')
  assert (p.section, p.domain, p.label, p.attribute_string) == ('01', 'target', 'anomaly', '')
  p = layout.parse_file_name('section_00_0042.wav')
  assert (p.section, p.index, p.split, p.domain, p.label) == ('00', 42, 'test', None, None)
  assert layout.attribute_pairs('a_b_c') == (('attribute', 'a_b_c'),)
  with pytest.raises(layout.DatasetError, match='fits no DCASE pattern'):
    layout.parse_file_name('machine_00_normal.wav')


def test_generated_manifest_has_the_counts_asked_for(small_root):
  manifest = layout.scan_dataset(small_root)
  assert manifest.machines == ['fan', 'valve'] and not manifest.problems
  for machine in manifest.machines:
    assert len(manifest.select(machine=machine, split='train', domain='source')) == 6
    assert len(manifest.select(machine=machine, split='train', domain='target')) == 2
    for domain in ('source', 'target'):
      for label in ('normal', 'anomaly'):
        assert len(manifest.select(machine=machine, split='test', domain=domain,
                                   label=label)) == 3
  clip = manifest.clips[0]
  assert (clip.channels, clip.sample_rate, clip.num_samples) == (2, 16000, 32000)
  assert dict(clip.attributes) and clip.has_attributes


def test_synthesis_is_deterministic_per_seed(tmp_path):
  one = synthetic.SynthConfig(machines=('gearbox',), clip_seconds=1.0, source_train=2,
                              target_train=1, test_per_group=1, seed=5)
  synthetic.generate(str(tmp_path / 'a'), one)
  synthetic.generate(str(tmp_path / 'b'), one)
  synthetic.generate(str(tmp_path / 'c'), synthetic.SynthConfig(**{**one.__dict__, 'seed': 6}))
  folder = 'dev_data/raw/gearbox/test'
  names = {d: sorted(os.listdir(tmp_path / d / folder)) for d in ('a', 'b', 'c')}
  assert names['a'] == names['b'] and len(names['a']) == len(names['c']) == 4
  samples = lambda d: np.concatenate([sf.read(tmp_path / d / folder / n)[0].ravel()
                                      for n in names[d]])
  np.testing.assert_array_equal(samples('a'), samples('b'))  # the same seed: the same files
  assert samples('a').shape == samples('c').shape
  assert not np.array_equal(samples('a'), samples('c'))  # another seed: other audio


def test_synthesis_writes_the_same_files_with_any_number_of_workers(tmp_path):
  config = synthetic.SynthConfig(machines=('fan',), clip_seconds=1.0, source_train=50,
                                 target_train=6, test_per_group=2, seed=2)  # 64 clips: a pool
  synthetic.generate(str(tmp_path / 'one'), config, workers=1)
  synthetic.generate(str(tmp_path / 'two'), config, workers=2)

  def tree(root):
    files = {}
    for folder, _, names in os.walk(root):
      for name in names:
        with open(os.path.join(folder, name), 'rb') as f:
          files[os.path.relpath(os.path.join(folder, name), root)] = f.read()
    return files

  one, two = tree(tmp_path / 'one'), tree(tmp_path / 'two')
  assert len(one) == 64 + 3  # clips, attributes_00.csv, two ground-truth files
  assert one == two


def test_severity_range_changes_only_the_anomalous_clips(tmp_path):
  """The range scales the anomalies; every normal clip stays the same file."""
  small = synthetic.SynthConfig(machines=('bearing',), clip_seconds=1.0, source_train=2,
                                target_train=1, test_per_group=2)
  synthetic.generate(str(tmp_path / 'weak'), small)
  synthetic.generate(str(tmp_path / 'strong'),
                     synthetic.SynthConfig(**{**small.__dict__, 'severity_range': (0.5, 1.0)}))
  for split in ('train', 'test'):
    folder = f'dev_data/raw/bearing/{split}'
    names = sorted(os.listdir(tmp_path / 'weak' / folder))
    assert names == sorted(os.listdir(tmp_path / 'strong' / folder))
    for name in names:
      same = np.array_equal(*(sf.read(tmp_path / d / folder / name)[0]
                              for d in ('weak', 'strong')))
      assert same == ('_anomaly_' not in name), name
  for bad in ((0.0, 0.4), (0.4, 0.1), (0.1,), (0.1, 0.2, 0.3)):
    with pytest.raises(ValueError, match='severity_range must satisfy'):
      synthetic.SynthConfig(severity_range=bad)


def _copy(small_root, tmp_path):
  root = str(tmp_path / 'copy')
  shutil.copytree(small_root, root)
  return root, os.path.join(root, 'dev_data/raw/fan/train')


def test_bad_files_are_named_and_skipped_when_not_strict(small_root, tmp_path):
  root, train = _copy(small_root, tmp_path)
  corrupt = os.path.join(train, 'section_00_source_train_normal_0099_spd_18_bld_5.wav')
  with open(corrupt, 'wb') as f:
    f.write(b'RIFF\x00\x00garbage')
  with pytest.raises(layout.DatasetError, match=f'{corrupt}: unreadable audio'):
    layout.scan_dataset(root)
  badly_named = os.path.join(train, 'fan_recording_7.wav')
  shutil.copy(os.path.join(train, sorted(os.listdir(train))[0]), badly_named)
  manifest = layout.scan_dataset(root, strict=False)
  assert len(manifest.problems) == 2
  assert any(badly_named in p and 'fits no DCASE pattern' in p for p in manifest.problems)
  assert len(manifest.clips) == 40


def test_csv_row_without_file_and_mixed_rates(small_root, tmp_path):
  root, train = _copy(small_root, tmp_path)
  name = sorted(os.listdir(train))[0]
  os.remove(os.path.join(train, name))
  with pytest.raises(layout.DatasetError, match=f'row {name} has no WAV file'):
    layout.scan_dataset(root)
  wave, _ = sf.read(os.path.join(train, sorted(os.listdir(train))[0]))
  other = os.path.join(train, sorted(os.listdir(train))[1])
  sf.write(other, wave[::2], 8000)
  manifest = layout.scan_dataset(root, strict=False)
  assert any(f'{other}: sample rate 8000 Hz' in p for p in manifest.problems)
  assert other not in [c.path for c in manifest.clips]


def test_missing_folder_is_one_clear_error(tmp_path):
  with pytest.raises(layout.DatasetError, match='no such dataset folder'):
    layout.scan_dataset(str(tmp_path / 'nothing'))
  os.makedirs(tmp_path / 'empty')
  with pytest.raises(layout.DatasetError, match='no machine folders'):
    layout.scan_dataset(str(tmp_path / 'empty'))


def test_batches_have_shape_labels_and_are_deterministic(train_records):
  clips, records = train_records
  audio = pipeline.AudioConfig(clip_seconds=1.0)
  ds = pipeline.train_dataset(records, audio, batch_size=4, seed=0, shard_by_process=False)
  first = [b for _, b in zip(range(4), ds)]
  again = [b for _, b in zip(range(4), ds)]
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a['wave'], b['wave'])
  batch = first[0]
  assert batch['wave'].shape == (4, 2, 16000) and batch['wave'].dtype == np.float32
  space = labels_lib.LabelSpace.from_clips(clips)
  for i, index in enumerate(batch['index']):
    expected = space.encode(clips[index])
    assert all(batch[k][i] == v for k, v in expected.items())
  # 16 clips: batches 0-3 are epoch 1, 4-7 epoch 2, reshuffled with fresh crops.
  epoch2 = [b for _, b in zip(range(8), ds)][4:]
  order1 = np.concatenate([b['index'] for b in first])
  order2 = np.concatenate([b['index'] for b in epoch2])
  assert sorted(order1) == sorted(order2) == list(range(16)) and list(order1) != list(order2)


def test_iterator_state_restores_the_identical_next_batch(train_records):
  _, records = train_records
  ds = pipeline.train_dataset(records, pipeline.AudioConfig(clip_seconds=1.0), 4, seed=1,
                              shard_by_process=False)
  it = iter(ds)
  for _ in range(5):
    next(it)
  state = it.get_state()
  expected = next(it)
  resumed = iter(ds)
  resumed.set_state(state)
  got = next(resumed)
  np.testing.assert_array_equal(got['wave'], expected['wave'])
  np.testing.assert_array_equal(got['index'], expected['index'])


def test_worker_processes_give_the_same_batches(train_records):
  _, records = train_records
  audio = pipeline.AudioConfig(clip_seconds=1.0)
  take = lambda workers: [b for _, b in zip(range(5), pipeline.train_dataset(
      records, audio, 4, seed=2, num_workers=workers, shard_by_process=False))]
  for a, b in zip(take(0), take(2)):
    np.testing.assert_array_equal(a['wave'], b['wave'])
    np.testing.assert_array_equal(a['domain_id'], b['domain_id'])


# A process that reads one batch from a Grain worker and ends at once: Grain unlinks the batch's
# shared memory on a background thread, which the exit used to cut short (7 of 8 runs warned).
READ_ONE_BATCH_AND_EXIT = """
import sys
from asd_jax.data import labels, layout, pipeline
train = layout.scan_dataset(sys.argv[1]).select(split='train')
records = pipeline.clip_records(train, labels.LabelSpace.from_clips(train))
batches = pipeline.train_dataset(records, pipeline.AudioConfig(clip_seconds=1.0), 4, seed=0,
                                 num_workers=1, shard_by_process=False)
print(next(iter(batches))['wave'].shape)
"""


def test_a_process_ending_after_worker_batches_leaves_no_shared_memory(small_root):
  for _ in range(2):
    done = subprocess.run([sys.executable, '-c', READ_ONE_BATCH_AND_EXIT, small_root],
                          env={**os.environ, 'PYTHONPATH': REPO}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '(4, 2, 16000)'
    assert 'leaked shared_memory' not in done.stderr, done.stderr


def test_augmentation_probabilities_hold(tmp_path):
  path = str(tmp_path / 'const.wav')
  sf.write(path, np.stack([np.full(16000, 0.5), np.full(16000, 0.25)], 1), 16000,
           subtype='FLOAT')
  audio = pipeline.AudioConfig(clip_seconds=0.5, swap_prob=0.5, gain_db=6.0,
                               channel_dropout_prob=0.1)
  transform = pipeline.LoadRandomCropAugmented(audio)
  rng = np.random.default_rng(0)
  swaps = drops = 0
  gains = []
  n = 2000
  for _ in range(n):
    wave = transform.random_map({'path': path, 'sample_rate': 16000}, rng)['wave']
    level = wave[:, 0]
    if (level == 0).any():
      drops += 1
      continue
    ratio = level[0] / level[1]
    # 0.5/0.25 = 2 unswapped, 0.5 swapped, times gains within ±12 dB in the ratio
    swapped = ratio < 1.0 if abs(np.log(ratio)) > 1e-6 else False
    swaps += swapped
    gains += list(20 * np.log10(level / (np.array([0.25, 0.5]) if swapped else
                                          np.array([0.5, 0.25]))))
  assert abs(drops / n - 0.1) < 0.025
  assert abs(swaps / (n - drops) - 0.5) < 0.05
  assert -6.0 - 1e-4 <= min(gains) and max(gains) <= 6.0 + 1e-4 and np.std(gains) > 3.0


def test_mono_is_duplicated_or_refused(tmp_path):
  path = str(tmp_path / 'mono.wav')
  sf.write(path, np.linspace(-0.5, 0.5, 8000), 8000)
  wave = pipeline.read_wave(path, 'duplicate')
  assert wave.shape == (2, 16000) and np.array_equal(wave[0], wave[1])
  with pytest.raises(layout.DatasetError, match='mono file'):
    pipeline.read_wave(path, 'error')


def test_eval_batches_are_padded_with_a_mask(train_records):
  _, records = train_records
  batches = list(pipeline.padded_batches(
      pipeline.eval_dataset(records, pipeline.AudioConfig(clip_seconds=1.0), 6), 6))
  assert [b['valid'].sum() for b in batches] == [6, 6, 4]
  assert all(b['wave'].shape == (6, 1, 2, 16000) for b in batches)
  assert list(np.concatenate([b['index'][b['valid']] for b in batches])) == list(range(16))
  # One window is the centred crop of the 2-s clip.
  wave = pipeline.read_wave(train_records[0][0].path, 'error')
  np.testing.assert_array_equal(batches[0]['wave'][0, 0], wave[:, 8000:24000])


def test_window_offsets_span_the_clip():
  assert pipeline.window_offsets(64000, 32000, 3) == [0, 16000, 32000]
  assert pipeline.window_offsets(64000, 32000, 1) == [16000]
  assert pipeline.window_offsets(10, 4, 4) == [0, 2, 4, 6]
  assert pipeline.window_offsets(16000, 32000, 3) == [0, 0, 0]  # shorter: one padded crop
  with pytest.raises(ValueError, match='eval_windows must be at least 1'):
    pipeline.AudioConfig(eval_windows=0)


def test_model_outputs_average_the_windows_of_each_clip(train_records):
  """Three 1-s crops of a 2-s clip (starts 0, 0.5, 1 s): each output is the mean over them,
  against crops cut here by hand (exact up to float32 rounding)."""
  from asd_jax.inference import embed
  clips, _ = train_records
  audio = pipeline.AudioConfig(clip_seconds=1.0, eval_windows=3)

  def predict(params, wave):  # [B, 2, S] -> per-channel energy and the first sample
    return {'energy': (wave**2).mean(-1), 'first': wave[:, :, 0]}

  out = embed.model_outputs(predict, None, clips[:5], audio, batch_size=2)
  for i, clip in enumerate(clips[:5]):
    crops = [pipeline.read_wave(clip.path, 'error')[:, start:start + 16000]
             for start in (0, 8000, 16000)]
    np.testing.assert_allclose(out['energy'][i], np.mean([(c**2).mean(-1) for c in crops], 0),
                               rtol=1e-5)
    np.testing.assert_allclose(out['first'][i], np.mean([c[:, 0] for c in crops], 0),
                               rtol=1e-5, atol=1e-7)


def test_a_simple_detector_finds_anomalies_but_not_trivially(tmp_path):
  """Log-mel statistics + Ledoit-Wolf Mahalanobis on the near channel: AUC between chance and
  perfect, so the dataset is neither hopeless nor trivial."""
  import librosa
  from sklearn.covariance import LedoitWolf
  from sklearn.metrics import roc_auc_score
  root = str(tmp_path / 'd')
  synthetic.generate(root, synthetic.SynthConfig(clip_seconds=2.0, source_train=24,
                                                 target_train=4, test_per_group=8))
  manifest = layout.scan_dataset(root)

  def features(clip):
    mel = librosa.feature.melspectrogram(y=sf.read(clip.path, dtype='float32')[0][:, 0],
                                         sr=16000, n_fft=1024, hop_length=512, n_mels=64)
    log = np.log(mel + 1e-8)
    return np.concatenate([log.mean(1), log.std(1)])

  aucs = []
  for machine in manifest.machines:
    train = np.array([features(c) for c in manifest.select(machine=machine, split='train')])
    test = manifest.select(machine=machine, split='test')
    scores = LedoitWolf().fit(train).mahalanobis(np.array([features(c) for c in test]))
    aucs.append(roc_auc_score([c.label == 'anomaly' for c in test], scores))
  assert 0.6 < np.mean(aucs) < 0.95, aucs
  assert max(aucs) < 0.99, aucs


def test_synth_and_inspect_commands(tmp_path):
  root = str(tmp_path / 'cli')
  env = {**os.environ, 'PYTHONPATH': REPO}
  run = lambda *a: subprocess.run([sys.executable, '-m', 'asd_jax.cli.main', *a], env=env,
                                  capture_output=True, text=True, timeout=300)
  made = run('synth', f'--output_dir={root}', '--machines=valve', '--clip_seconds=1',
             '--source_train=3', '--target_train=1', '--test_per_group=1',
             '--severity_range=0.1,1.0')
  assert made.returncode == 0, made.stderr
  reversed_range = run('synth', f'--output_dir={tmp_path}/other', '--severity_range=1,0.1')
  assert reversed_range.returncode != 0
  assert 'severity_range must satisfy 0 < low <= high' in reversed_range.stderr
  held_out = run('synth', f'--output_dir={tmp_path}/other', '--machines=fan,pump')
  assert held_out.returncode != 0  # held-out families live in research/, not the package
  assert "unknown machine types ['pump']; choose from ['bearing', 'fan'" in held_out.stderr
  shown = run('inspect', f'--data_dir={root}')
  assert shown.returncode == 0, shown.stderr
  assert 'valve' in shown.stdout and '8 clips' in shown.stdout
  missing = run('inspect', f'--data_dir={tmp_path}/none')
  assert missing.returncode == 1 and missing.stderr.strip().endswith('no such dataset folder')
