"""`asd-jax export` / `asd-jax score` / `Detector`: a finished run scores new recordings.

The central check: a run's exported detector gives that run's own submission scores for its
test clips (relative difference at most 1e-5, or 1e-6 absolute for scores near zero) and the
same decisions, for every exportable system.
"""
import contextlib
import csv
import glob
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from asd_jax import Detector, job
from asd_jax.data import pipeline
from asd_jax.evaluation import submission
from asd_jax.inference import detector as detector_lib
from asd_jax.io import WorkdirError
from tests.conftest import REPO
from tests.test_run import tiny_config

SYSTEMS = ['task2_1', 'task2_2', 'task2_3', 'task2_4', 'reference_logmel']


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  """(workdir, data) of a finished small run with the shipped encoders."""
  from asd_jax.data import synthetic
  root = tmp_path_factory.mktemp('detector')
  data = str(root / 'data')
  synthetic.generate(data, synthetic.SynthConfig(machines=('fan', 'valve'), clip_seconds=1.0,
                                                 source_train=8, target_train=3,
                                                 test_per_group=3))
  workdir = str(root / 'w')
  job.run_job(tiny_config(shipped_encoders=True), data, workdir, progress=False)
  return workdir, data


@pytest.fixture(scope='module')
def exported(finished, tmp_path_factory):
  """{system: detector folder} of every exportable system."""
  workdir, data = finished
  root = tmp_path_factory.mktemp('exported')
  return {s: detector_lib.export(workdir, str(root / s), s, data_dir=data, progress=False)
          for s in SYSTEMS}


def test_exported_detectors_give_the_runs_own_scores_and_decisions(finished, exported):
  workdir, data = finished
  for system, folder in exported.items():
    detector = Detector.load(folder)
    wanted = submission.read_scores(os.path.join(workdir, 'submission', system))
    decided = submission.read_decisions(os.path.join(workdir, 'submission', system))
    for (machine, section), by_name in sorted(wanted.items()):
      names = sorted(by_name)
      paths = [os.path.join(data, 'dev_data', 'raw', machine, 'test', n) for n in names]
      scores, decisions = detector.score(paths)
      want = np.array([by_name[n] for n in names])
      np.testing.assert_allclose(scores, want, rtol=1e-5, atol=1e-6,
                                 err_msg=f'{system} {machine} {section}')
      assert decisions.tolist() == [decided[machine, section][n] for n in names], system


def test_waves_score_like_their_files(exported, finished):
  _, data = finished
  detector = Detector.load(exported['task2_1'])
  paths = sorted(glob.glob(os.path.join(data, 'dev_data', 'raw', 'fan', 'test', '*.wav')))[:3]
  waves = np.stack([pipeline.read_wave(p, 'error') for p in paths])
  from_files = detector.score(paths)
  from_waves = detector.score(waves, machine='fan', section='00')
  np.testing.assert_array_equal(from_waves.scores, from_files.scores)
  with pytest.raises(ValueError, match="machine type 'pump' is unknown"):
    detector.score(waves, machine='pump', section='00')
  # a path that is no audio file says what it is, not libsndfile's "System error."
  for path, problem in ((os.path.join(data, 'missing.wav'), 'no such file'),
                        (data, 'a folder, not an audio file')):
    with pytest.raises(ValueError, match=f'^{re.escape(path)}: {problem}$'):
      detector.score(path, machine='fan', section='00')
  with pytest.raises(ValueError, match='needs machine= and section='):
    detector.score(waves)
  with pytest.raises(ValueError, match=r'^waves\[0\]: 2799 samples \(0.175 s\) are too short'):
    detector.score(waves[:, :, :2799], machine='fan', section='00')
  assert detector.score(waves[:, :, :2800], machine='fan', section='00').scores.shape == (3,)
  # a list of clips of their own lengths, and one path given alone
  listed = detector.score([waves[0], waves[1][:, :-1000]], machine='fan', section='00')
  assert listed.scores[0] == from_waves.scores[0] and listed.scores[1] != from_waves.scores[1]
  np.testing.assert_allclose(detector.score(paths[0]).scores, from_files.scores[:1], rtol=1e-5)
  np.testing.assert_array_equal(detector.score(iter(paths)).scores, from_files.scores)
  broken = waves.copy()
  broken[1, 0, 5] = np.nan
  with pytest.raises(ValueError, match=r'^waves\[1\]: 1 NaN/Inf samples$'):
    detector.score(broken, machine='fan', section='00')
  with pytest.raises(ValueError, match=r'^waves\[1\] must be a \[2, samples\] array'):
    detector.score([waves[0], waves[1][0]], machine='fan', section='00')


def test_machine_and_section_come_from_the_flags_or_the_path():
  assert detector_lib.clip_key('/d/valve/test/section_01_source_test_normal_0001_a_1.wav') == (
      'valve', '01')
  assert detector_lib.clip_key('/d/valve/new/section_02_recorded_at_noon.wav') == ('valve', '02')
  assert detector_lib.clip_key('/d/x/plain.wav', 'fan', '00') == ('fan', '00')
  with pytest.raises(ValueError, match=r"^/d/plain.wav: its name does not start with "
                                       r"section_<ss>_ .*; give --section$"):
    detector_lib.clip_key('/d/plain.wav', 'fan')


def test_a_damaged_detector_is_one_line_naming_what_is_wrong(exported, tmp_path):
  import shutil
  folder = str(tmp_path / 'd')

  def damaged(change, wanted):
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(exported['task2_1'], folder)
    change()
    with pytest.raises(WorkdirError, match=f'^{folder}: a damaged detector \\({wanted}\\); '
                                           'export it again$'):
      Detector.load(folder)

  npz, config = os.path.join(folder, 'reference.npz'), os.path.join(folder, 'config.json')
  damaged(lambda: os.remove(npz), f"\\[Errno 2\\] No such file or directory: '{npz}'")
  damaged(lambda: os.truncate(npz, 1000), f'{npz}: not a whole .npz file .*')
  damaged(lambda: pathlib.Path(config).write_text('{'), f'{config}: not valid JSON .*')
  damaged(lambda: (tmp_path / 'd' / 'manifest.json').write_text('{"format": 1}'),
          "an entry 'branches' is missing")


def test_export_of_an_unfinished_workdir_names_what_is_missing(finished, tmp_path):
  workdir, data = finished
  partial = str(tmp_path / 'partial')
  os.makedirs(partial)
  with pytest.raises(WorkdirError, match='no config.json'):
    detector_lib.export(partial, str(tmp_path / 'd'), data_dir=data)
  import shutil
  shutil.copy(os.path.join(workdir, 'config.json'), partial)
  with pytest.raises(WorkdirError, match=r'cannot export task2_1: stage embed beats \(missing\)'):
    detector_lib.export(partial, str(tmp_path / 'd'), data_dir=data)
  with pytest.raises(WorkdirError, match='--system=task9: choose from'):
    detector_lib.export(workdir, str(tmp_path / 'd'), 'task9', data_dir=data)
  assert not os.path.exists(tmp_path / 'd')


def _cli(*args, timeout=300):
  return subprocess.run([sys.executable, '-m', 'asd_jax.cli.main', *args],
                        env={**os.environ, 'PYTHONPATH': REPO}, capture_output=True, text=True,
                        timeout=timeout)


def _rows(path):
  with open(path, newline='') as f:
    return list(csv.reader(f))


def test_score_command_files_folders_flags_and_bad_files(finished, exported, tmp_path):
  _, data = finished
  folder = os.path.join(data, 'dev_data', 'raw', 'valve', 'test')
  plain = str(tmp_path / 'plain.wav')  # a plain name: machine and section from the flags
  first = sorted(glob.glob(os.path.join(folder, '*.wav')))[0]
  wave, rate = sf.read(first, dtype='float32')
  sf.write(plain, wave, rate)
  out = str(tmp_path / 'scores.csv')
  good = _cli('score', f'--detector={exported["task2_1"]}', f'--output={out}', folder)
  assert good.returncode == 0, good.stderr
  rows = _rows(out)
  assert rows[0] == ['file', 'anomaly_score', 'decision'] and len(rows) == 13
  named = _cli('score', f'--detector={exported["task2_1"]}', '--machine=valve', '--section=00',
               plain)
  assert named.returncode == 0, named.stderr
  # the same clip alone in its batch: the same score up to float32 rounding in the encoder
  assert float(named.stdout.splitlines()[1].split(',')[1]) == pytest.approx(float(rows[1][1]),
                                                                            rel=1e-6)
  (tmp_path / 'flac').mkdir()
  sf.write(str(tmp_path / 'flac' / 'a.flac'), wave, rate)
  empty = _cli('score', f'--detector={exported["task2_1"]}', str(tmp_path / 'flac'))
  assert empty.returncode == 1 and empty.stderr.strip() == (
      f'error: {tmp_path}/flac: no .wav files in this folder or below (files in other audio '
      'formats are scored when named one by one)')
  unknown = _cli('score', f'--detector={exported["task2_1"]}', '--section=00', plain)
  assert unknown.returncode == 1
  assert unknown.stderr.strip() == (
      f"error: {plain}: its folder gives machine type '{tmp_path.parent.name}' "
      '(<machine>/<split>/<file>), which this detector does not know (it knows fan, valve); '
      'give --machine')
  truncated, nan = str(tmp_path / 'bad' / 'truncated.wav'), str(tmp_path / 'bad' / 'nan.wav')
  os.makedirs(os.path.dirname(truncated))
  with open(first, 'rb') as f:
    content = f.read()
  with open(truncated, 'wb') as f:
    f.write(content[:len(content) // 2])
  sf.write(nan, np.full((16000, 2), np.nan, np.float32), 16000, subtype='FLOAT')
  short = str(tmp_path / 'bad' / 'short.wav')  # sound, but shorter than one fbank patch
  sf.write(short, wave[:2799], rate)
  with pytest.raises(ValueError, match=f'^{short}: 2799 samples'):
    Detector.load(exported['task2_1']).score([short], machine='valve', section='00')
  args = ['score', f'--detector={exported["task2_1"]}', '--machine=valve', '--section=00',
          plain, os.path.dirname(truncated)]
  bad = _cli(*args)
  assert bad.returncode == 1
  lines = bad.stderr.strip().splitlines()
  assert len(lines) == 3 and lines[0].startswith(f'error: {nan}: ') and 'NaN' in lines[0]
  assert lines[1] == (f'error: {short}: 2799 samples (0.175 s) are too short: this detector '
                      'needs at least 2800 (0.175 s)')
  assert lines[2].startswith(f'error: {truncated}: truncated')
  skipping = _cli(*args, '--nostrict')
  assert skipping.returncode == 0, skipping.stderr
  assert 'skipped 3 file(s)' in skipping.stderr
  assert len(skipping.stdout.splitlines()) == 2  # header + the plain clip


def test_follow_output_after_a_kill_mid_row(tmp_path):
  """A CSV cut inside a row (the watcher killed while appending) loses that row only: its file
  is scored again and the next rows start on a line of their own."""
  from asd_jax.cli import score
  out = tmp_path / 'scores.csv'
  assert score.resume_output(str(out)) == set() and _rows(out) == [score.HEADER]
  out.write_bytes(b'file,anomaly_score,decision\r\na.wav,0.5,0\r\nb.wav,0.2')
  assert score.resume_output(str(out)) == {'a.wav'}
  assert out.read_bytes() == b'file,anomaly_score,decision\r\na.wav,0.5,0\r\n'
  out.write_bytes(b'file,anomaly_sc')  # cut inside the header
  assert score.resume_output(str(out)) == set() and _rows(out) == [score.HEADER]


def test_follow_takes_a_file_once_its_size_holds_and_passes_over_one_that_vanished(
    tmp_path, monkeypatch):
  from asd_jax.cli import score
  growing, gone, old = (str(tmp_path / n) for n in ('growing.wav', 'gone.wav', 'old.wav'))
  for path in (growing, gone, old):
    with open(path, 'wb') as f:
      f.write(b'x' * 10)
  sizes = {}
  assert score.settled_files([str(tmp_path)], {old}, sizes) == []  # first sight: sizes only
  with open(growing, 'ab') as f:
    f.write(b'x')
  real_getsize = os.path.getsize

  def getsize(path):  # `gone` is deleted between each listing and the reading of its size
    if path == gone:
      raise FileNotFoundError(path)
    return real_getsize(path)

  monkeypatch.setattr(os.path, 'getsize', getsize)
  assert score.settled_files([str(tmp_path)], {old}, sizes) == []
  assert gone not in sizes
  assert score.settled_files([str(tmp_path)], {old}, sizes) == [growing]


def test_follow_scores_new_files_once_and_resumes(finished, exported, tmp_path):
  _, data = finished
  watched = tmp_path / 'incoming' / 'fan' / 'test'
  watched.mkdir(parents=True)
  clips = sorted(glob.glob(os.path.join(data, 'dev_data', 'raw', 'fan', 'test', '*.wav')))
  out = str(tmp_path / 'follow.csv')
  command = [sys.executable, '-m', 'asd_jax.cli.main', 'score',
             f'--detector={exported["task2_4"]}', f'--output={out}', '--follow',
             '--poll_seconds=0.3', str(tmp_path / 'incoming')]

  @contextlib.contextmanager
  def following(wanted_rows):
    """Starts the watcher, runs the block once it has written the CSV's header, waits for
    `wanted_rows` rows, stops it with SIGINT."""
    process = subprocess.Popen(command, env={**os.environ, 'PYTHONPATH': REPO},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
      deadline = time.monotonic() + 240
      while not os.path.exists(out) or len(_rows(out)) < 1:
        assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
        time.sleep(0.2)
      yield process
      while len(_rows(out)) < wanted_rows:
        assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
        time.sleep(0.2)
    finally:
      process.send_signal(signal.SIGINT)
      stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert 'stopped;' in stdout

  with following(2):  # started on an empty folder; a file written after it started
    time.sleep(1.0)
    with open(clips[0], 'rb') as f:
      (watched / os.path.basename(clips[0])).write_bytes(f.read())
  with following(3):  # restarted: only the new file is scored
    with open(clips[1], 'rb') as f:
      (watched / os.path.basename(clips[1])).write_bytes(f.read())
  rows = _rows(out)
  assert [os.path.basename(r[0]) for r in rows[1:]] == [os.path.basename(c) for c in clips[:2]]
  expected = Detector.load(exported['task2_4']).score(clips[:2]).scores
  np.testing.assert_allclose([float(r[1]) for r in rows[1:]], expected, rtol=1e-6)
