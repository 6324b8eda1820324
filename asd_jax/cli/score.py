"""Score WAV files and folders with an exported detector (asd-jax export).

asd-jax score --detector=D [--machine=M --section=00] [--output=F.csv] [--nostrict]
              [--follow] PATH...

One CSV row per clip (file, anomaly score, 0/1 decision), in the order given; folders are read
recursively, in name order. Machine type and section come from DCASE-style names
(<machine>/<split>/section_<ss>_...wav) or from --machine and --section. Each file gets the
checks of `asd-jax inspect`: a truncated, unreadable, empty, NaN/Inf or silent file, one too
short for the detector's whole-clip features, or one of a machine type or section the detector
does not know, stops the command in one line per file (--nostrict skips them and counts them).
--follow keeps watching the folders and scores each new file once, when its size has stopped
changing, appending to --output; Ctrl-C or SIGTERM stops it, and a restart scores only files
not yet in --output.
"""
import os
import signal
import sys
import time

from absl import flags

from asd_jax.cli import common

_DETECTOR = flags.DEFINE_string('detector', None, 'a folder written by `asd-jax export`',
                                required=True)
_MACHINE = flags.DEFINE_string('machine', None, 'machine type of every clip (default: from '
                               'each file\'s folder)')
_SECTION = flags.DEFINE_string('section', None, 'section of every clip, e.g. 00 (default: from '
                               'each file\'s DCASE name)')
_OUTPUT = flags.DEFINE_string('output', None, 'write the CSV here (default: print it)')
_FOLLOW = flags.DEFINE_bool('follow', False, 'keep watching the folders and score new files as '
                            'they appear (needs --output)')
_POLL = flags.DEFINE_float('poll_seconds', 2.0, 'with --follow: how often the folders are read')
_STRICT = common.define_strict_flag()

HEADER = ['file', 'anomaly_score', 'decision']


def wav_files(paths: list[str], allow_empty_folders: bool = False) -> list[str]:
  """The WAV files of `paths` (files as given, folders recursively in name order). A folder
  with none fails in one line (a wrong folder, or recordings in another format), unless
  `allow_empty_folders` (--follow, where files are still to come)."""
  out = []
  for path in paths:
    if os.path.isdir(path):
      found = [os.path.join(root, f) for root, _, files in os.walk(path) for f in files
               if f.lower().endswith('.wav')]
      if not found and not allow_empty_folders:
        common.fail(f'{path}: no .wav files in this folder or below (files in other audio '
                    'formats are scored when named one by one)')
      out += sorted(found)
    elif os.path.isfile(path):
      out.append(path)
    else:
      common.fail(f'{path}: no such file or folder')
  return out


def problems(detector, paths: list[str]) -> dict[str, str]:
  """{path: one line} of the files that cannot be scored."""
  import soundfile as sf
  from asd_jax.audio import SAMPLE_RATE
  from asd_jax.data import audio_check
  from asd_jax.inference.detector import clip_key
  found = {}
  for path in paths:
    line = audio_check.file_problem(path, detector.config.data.mono)
    if line is None:
      try:
        machine, section = clip_key(path, _MACHINE.value, _SECTION.value)
        if _MACHINE.value is None and machine not in detector.machines:
          raise ValueError(f'{path}: its folder gives machine type {machine!r} '
                           '(<machine>/<split>/<file>), which this detector does not know (it '
                           f'knows {", ".join(detector.machines)}); give --machine')
        detector.check(machine, section, path)
        info = sf.info(path)
        detector.check_length(info.frames * SAMPLE_RATE // info.samplerate, path)
      except ValueError as e:
        line = str(e)
    if line:
      found[path] = line
  return found


def score_files(detector, paths: list[str], progress: bool = True) -> list[list]:
  """CSV rows of the files that pass the checks; a bad file fails the command unless
  --nostrict, which skips and counts it."""
  bad = problems(detector, paths)
  if bad and _STRICT.value:
    common.fail_lines(list(bad.values()))
  if bad:
    print(f'skipped {len(bad)} file(s) that cannot be scored (--nostrict); the first: '
          f'{next(iter(bad.values()))}', file=sys.stderr)
  good = [p for p in paths if p not in bad]
  try:
    scores, decisions = detector.score(good, _MACHINE.value, _SECTION.value, progress=progress)
  except ValueError as e:  # a file that changed after its checks
    common.fail(str(e))
  return [[p, repr(float(s)), int(d)] for p, s, d in zip(good, scores, decisions)]


def main(argv):
  from asd_jax.inference.detector import Detector
  from asd_jax.io import WorkdirError, atomic_write_csv
  targets = argv[1:]
  if not targets:
    common.fail('give the WAV files or folders to score')
  if _FOLLOW.value and not _OUTPUT.value:
    common.fail('--follow appends to --output: give --output=F.csv')
  common.check_output_file('--output', _OUTPUT.value)
  files = None if _FOLLOW.value else wav_files(targets)
  try:
    detector = Detector.load(_DETECTOR.value)
  except WorkdirError as e:
    common.fail(str(e))
  if _FOLLOW.value:
    follow(detector, targets)
    return
  rows = score_files(detector, files)
  if _OUTPUT.value:
    atomic_write_csv(_OUTPUT.value, [HEADER, *rows])
    print(f'{len(rows)} clips scored -> {_OUTPUT.value}')
  else:
    print(','.join(HEADER))
    for row in rows:
      print(','.join(str(v) for v in row))


def resume_output(path: str) -> set[str]:
  """The files already scored in the --follow CSV at `path` (made with its header if absent).
  A last row cut off by a kill is dropped, so that its file is scored again and the next rows
  do not run into it."""
  import csv
  if os.path.exists(path):
    with open(path, 'rb+') as f:
      content = f.read()
      if not content.endswith(b'\n'):
        f.truncate(content.rfind(b'\n') + 1)
  if not os.path.exists(path) or not os.path.getsize(path):
    with open(path, 'w', newline='') as f:
      csv.writer(f).writerow(HEADER)
    return set()
  with open(path, newline='') as f:
    return {row[0] for row in csv.reader(f) if row and row != HEADER}


def settled_files(targets: list[str], done: set[str], sizes: dict[str, int]) -> list[str]:
  """The WAV files under `targets` not in `done` whose size is the one `sizes` holds from the
  last call (updated here): written to the end, by all that a folder listing can tell."""
  settled = []
  for path in wav_files(targets, allow_empty_folders=True):
    if path in done:
      continue
    try:
      size = os.path.getsize(path)
    except FileNotFoundError:  # moved or deleted since the folder was read
      sizes.pop(path, None)
      continue
    if sizes.get(path) == size:
      settled.append(path)
    sizes[path] = size
  return settled


def follow(detector, targets: list[str]) -> None:
  """Scores the files already there and then each new one, once its size is the same at two
  reads in a row; rows are appended to --output, whose files count as done on a restart."""
  import csv
  stop = []
  for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda *_: stop.append(True))
  done = resume_output(_OUTPUT.value)
  print(f'following {", ".join(targets)} ({len(done)} files already in {_OUTPUT.value}); '
        'Ctrl-C stops', flush=True)
  sizes: dict[str, int] = {}
  while not stop:
    settled = settled_files(targets, done, sizes)
    if settled:
      rows = score_files(detector, settled, progress=False)
      with open(_OUTPUT.value, 'a', newline='') as f:
        csv.writer(f).writerows(rows)
        f.flush()
        os.fsync(f.fileno())
      done.update(settled)  # skipped files (--nostrict) are not retried either
      print(f'scored {len(rows)} new file(s)', flush=True)
    deadline = time.monotonic() + _POLL.value
    while not stop and time.monotonic() < deadline:
      time.sleep(0.1)
  print(f'stopped; {len(done)} files in {_OUTPUT.value}', flush=True)
