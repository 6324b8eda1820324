"""Bad audio and official-layout ground truth in a dataset: caught before any work, one line
per file; --nostrict leaves the bad files out and counts them."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from asd_jax import job
from asd_jax.data import audio_check, layout, synthetic
from asd_jax.configs import default
from tests.conftest import REPO

SMALL = synthetic.SynthConfig(machines=('fan', 'valve'), clip_seconds=2.0, source_train=6,
                              target_train=2, test_per_group=3, seed=5)


@pytest.fixture(scope='module')
def clean_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('clean') / 'data')
  synthetic.generate(root, SMALL)
  return root


def _train_file(root, machine, i):
  folder = os.path.join(root, 'dev_data/raw', machine, 'train')
  return os.path.join(folder, sorted(os.listdir(folder))[i])


def _cut(path, keep):
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[:keep(len(data))])


def _rewrite(path, change, **write_args):
  wave, rate = sf.read(path, dtype='float32', always_2d=True)
  wave, rate = change(wave, rate)
  sf.write(path, wave, rate, **write_args)


BAD = {  # what is done to a clip -> the words its one line must hold
    'third': (lambda p: _cut(p, lambda n: n // 3), 'truncated: the header declares 2.000 s'),
    'bytes300': (lambda p: _cut(p, lambda n: 300), 'the file holds 0.004 s'),
    'nan': (lambda p: _rewrite(p, lambda w, r: (np.where(np.arange(len(w))[:, None] == 99,
                                                         np.nan, w), r), subtype='FLOAT'),
            '2 NaN/Inf samples'),
    'zero': (lambda p: _rewrite(p, lambda w, r: (np.zeros_like(w), r)), 'all samples are zero'),
    'mono': (lambda p: _rewrite(p, lambda w, r: (w[:, 0], r)), 'channel count 1 channel(s)'),
    'rate': (lambda p: _rewrite(p, lambda w, r: (w[::2], r // 2)), 'sample rate 8000 Hz'),
    'short': (lambda p: _rewrite(p, lambda w, r: (w[:r // 10], r)),
              '0.100 s long, far shorter than the other fan clips'),
}


def _break_all(root):
  """Each kind of bad file once, spread over both machines; returns {path: expected words}."""
  broken = {}
  for i, (kind, (damage, words)) in enumerate(BAD.items()):
    path = _train_file(root, ('fan', 'valve')[i % 2], i // 2)
    damage(path)
    broken[path] = words
  return broken


def test_each_bad_file_gets_its_line_and_nostrict_counts_them(clean_root, tmp_path, capsys):
  root = str(tmp_path / 'data')
  shutil.copytree(clean_root, root)
  broken = _break_all(root)
  with pytest.raises(layout.DatasetError) as raised:
    job.Job(default.get_config(), str(tmp_path / 'w'), progress=False).dataset(root)
  lines = raised.value.problems
  assert len(lines) == len(BAD)
  for path, words in broken.items():
    assert [l for l in lines if l.startswith(f'{path}: ')] == [
        next(l for l in lines if l.startswith(f'{path}: '))]
    assert words in next(l for l in lines if l.startswith(f'{path}: ')), (path, lines)
  manifest = job.Job(default.get_config(), str(tmp_path / 'w'), progress=False,
                     strict=False).dataset(root)
  assert len(manifest.problems) == len(BAD)
  assert not set(broken) & {c.path for c in manifest.clips}
  assert len(manifest.clips) == 2 * (8 + 12) - len(BAD)
  # the decoded verdict is kept for unchanged files: a rerun reads it instead of decoding
  record = os.path.join(tmp_path, 'w', 'stages', 'check_audio.json')
  assert os.path.exists(record)
  again = job.Job(default.get_config(), str(tmp_path / 'w'), progress=False,
                  strict=False).dataset(root)
  assert [c.path for c in again.clips] == [c.path for c in manifest.clips]
  # the dataset moved with its times kept: the kept verdicts still leave the same clips out
  moved = str(tmp_path / 'elsewhere')
  shutil.copytree(root, moved)
  capsys.readouterr()
  elsewhere = job.Job(default.get_config(), str(tmp_path / 'w'), progress=False,
                      strict=False).dataset(moved)
  assert 'check audio: done, unchanged' in capsys.readouterr().out  # nothing decoded again
  assert [os.path.relpath(c.path, moved) for c in elsewhere.clips] == [
      os.path.relpath(c.path, root) for c in manifest.clips]
  assert sorted(elsewhere.problems) == sorted(p.replace(root, moved) for p in manifest.problems)


def test_inspect_names_every_bad_file(clean_root, tmp_path):
  root = str(tmp_path / 'data')
  shutil.copytree(clean_root, root)
  broken = _break_all(root)
  run = lambda *a: subprocess.run([sys.executable, '-m', 'asd_jax.cli.main', 'inspect',
                                   f'--data_dir={root}', *a], capture_output=True, text=True,
                                  env={**os.environ, 'PYTHONPATH': REPO}, timeout=300)
  strict = run()
  assert strict.returncode == 1
  errors = [l for l in strict.stderr.splitlines() if l.startswith('error: ')]
  assert len(errors) == len(BAD)
  for path, words in broken.items():
    assert any(l.startswith(f'error: {path}: ') and words in l for l in errors), (path, errors)
  lenient = run('--nostrict')
  assert lenient.returncode == 0, lenient.stderr
  assert f'{len(BAD)} bad files skipped' in lenient.stdout


def test_truncation_check_reads_the_header_only(clean_root, tmp_path, monkeypatch):
  """A file one frame short of its header is named; the check reads the RIFF header and the
  file size, not the samples: with the decoder gone it still answers, and samples replaced by
  bytes no decoder would accept pass it."""
  import soundfile
  path = str(tmp_path / 'x.wav')
  shutil.copy(_train_file(clean_root, 'fan', 0), path)
  with open(path, 'r+b') as f:  # the samples (past the 44-byte header) overwritten
    f.seek(44)
    f.write(b'\xff' * (os.path.getsize(path) - 44))

  def no_decoding(*args, **kwargs):
    raise AssertionError('the truncation check decoded the samples')

  monkeypatch.setattr(soundfile, 'read', no_decoding)
  monkeypatch.setattr(soundfile, 'SoundFile', no_decoding)
  assert audio_check.wav_truncation(path) is None
  _cut(path, lambda n: n - 2)  # one stereo 16-bit frame short of the header's length
  assert audio_check.wav_truncation(path) == (
      f'{path}: truncated: the header declares 2.000 s of audio, the file holds 2.000 s')


def original_names(root, machine):
  return os.listdir(os.path.join(root, 'dev_data/raw', machine, 'test'))


def test_official_ground_truth_labels_evaluation_named_clips(clean_root, tmp_path):
  """Test clips named section_00_<iiii>.wav, labelled only by the official evaluator's folders
  under <root>/ground_truth/ (domains 0/1): the scan recovers every label and domain."""
  root = str(tmp_path / 'data')
  shutil.copytree(clean_root, root)
  shutil.rmtree(os.path.join(root, 'ground_truth'))
  original = {c.path: (c.label, c.domain) for c in layout.scan_dataset(clean_root).clips
              if c.split == 'test'}
  expected = {}
  for machine in ('fan', 'valve'):
    folder = os.path.join(root, 'dev_data/raw', machine, 'test')
    rows = {'data': [], 'domain': [], 'attributes': []}
    for i, name in enumerate(sorted(os.listdir(folder))):
      new = f'section_00_{i + 1:04d}.wav'
      os.rename(os.path.join(folder, name), os.path.join(folder, new))
      label, domain = original[os.path.join(os.path.abspath(clean_root), 'dev_data/raw', machine,
                                            'test', name)]
      expected[os.path.join(os.path.abspath(folder), new)] = (label, domain)
      rows['data'].append(f'{new},{int(label == "anomaly")}')
      rows['domain'].append(f'{new},{int(domain == "target")}')
      rows['attributes'].append(f'{new},{name[:-4]}')
    renamed = {name[:-4]: f'section_00_{i + 1:04d}' for i, name in
               enumerate(sorted(original_names(clean_root, machine)))}
    attributes = os.path.join(root, 'dev_data/raw', machine, 'attributes_00.csv')
    with open(attributes) as f:
      text = f.read()
    for old, new in renamed.items():  # the attribute rows follow the files' new names
      text = text.replace(f'test/{old}.wav', f'test/{new}.wav')
    with open(attributes, 'w') as f:
      f.write(text)
    for kind, lines in rows.items():
      path = os.path.join(root, 'ground_truth', f'ground_truth_{kind}',
                          f'ground_truth_{machine}_section_00_test.csv')
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
  manifest = layout.scan_dataset(root)
  got = {c.path: (c.label, c.domain) for c in manifest.clips if c.split == 'test'}
  assert got == expected
  truth = job.ground_truth(manifest)
  assert sorted(truth) == [('fan', '00'), ('valve', '00')]
  assert sum(len(t.clips) for t in truth.values()) == len(expected)
