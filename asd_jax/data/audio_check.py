"""Bad audio caught before any work: each check names the file and the problem in one line.

Per file, from the header (cheap, part of every dataset scan): a WAV holding less audio data
than its header declares (a cut copy or download). Across the dataset (also in the scan): a
channel count or sample rate other than the rest's, a clip far shorter than its machine's
others. From the samples (decodes every clip, so a stage of its own): NaN or Inf samples, and
all-zero clips.
"""
from __future__ import annotations

import collections
import os
import statistics
import struct

import numpy as np
import soundfile as sf

# A clip shorter than this share of its machine's median duration is refused: DCASE clips of
# one machine type have one length, so such a clip is cut, not a legitimately short recording.
MIN_SHARE_OF_MEDIAN = 0.5


def wav_truncation(path: str) -> str | None:
  """A problem line when the data chunk holds fewer bytes than the header declares."""
  size = os.path.getsize(path)
  byte_rate = None
  with open(path, 'rb') as f:
    head = f.read(12)
    if len(head) < 12 or head[:4] != b'RIFF' or head[8:12] != b'WAVE':
      return None  # not a plain RIFF WAV (RF64, other formats): soundfile judges it
    while True:
      chunk = f.read(8)
      if len(chunk) < 8:
        return None
      chunk_id, chunk_size = chunk[:4], struct.unpack('<I', chunk[4:])[0]
      if chunk_id == b'fmt ':
        fmt = f.read(chunk_size)
        if len(fmt) >= 12:
          byte_rate = struct.unpack('<I', fmt[8:12])[0]
        if chunk_size & 1:
          f.seek(1, 1)
        continue
      if chunk_id == b'data':
        present = size - f.tell()
        if present >= chunk_size:
          return None
        if byte_rate:
          return (f'{path}: truncated: the header declares {chunk_size / byte_rate:.3f} s of '
                  f'audio, the file holds {max(present, 0) / byte_rate:.3f} s')
        return f'{path}: truncated: the header declares {chunk_size} data bytes, the file ' \
               f'holds {max(present, 0)}'
      f.seek(chunk_size + (chunk_size & 1), 1)


def dataset_outliers(clips) -> dict[str, str]:
  """{path: problem} for clips whose channel count or sample rate differs from most clips', or
  that are far shorter than their machine's other clips."""
  problems = {}
  for field, unit in (('channels', 'channel(s)'), ('sample_rate', 'Hz')):
    counts = collections.Counter(getattr(c, field) for c in clips)
    usual = counts.most_common(1)[0][0]
    for clip in clips:
      value = getattr(clip, field)
      if value != usual and clip.path not in problems:
        what = 'sample rate' if field == 'sample_rate' else 'channel count'
        problems[clip.path] = (f'{clip.path}: {what} {value} {unit}, the other clips have '
                               f'{usual} {unit} ({counts[usual]} of {len(clips)})')
  by_machine = collections.defaultdict(list)
  for clip in clips:
    by_machine[clip.dataset, clip.machine].append(clip)
  for (_, machine), group in by_machine.items():
    median = statistics.median(c.duration for c in group)
    for clip in group:
      if clip.duration < MIN_SHARE_OF_MEDIAN * median and clip.path not in problems:
        problems[clip.path] = (f'{clip.path}: {clip.duration:.3f} s long, far shorter than the '
                               f'other {machine} clips (median {median:.2f} s)')
  return problems


def unreadable(path: str, error: Exception) -> str:
  """The problem line of a file soundfile could not open: libsndfile says 'System error.' for a
  missing file and 'Format not recognised.' for a folder, so those two are named here."""
  if not os.path.exists(path):
    return f'{path}: no such file'
  if os.path.isdir(path):
    return f'{path}: a folder, not an audio file'
  return f'{path}: unreadable audio ({str(error).splitlines()[0][-120:]})'


def nonfinite_samples(samples: np.ndarray) -> str | None:
  """'<n> NaN/Inf samples' when any sample is not finite, else None."""
  finite = np.isfinite(samples)
  return None if finite.all() else f'{int((~finite).sum())} NaN/Inf samples'


def content_problem(path: str) -> str | None:
  """Decodes the clip: a problem line for NaN/Inf samples or an all-zero clip."""
  try:
    samples, _ = sf.read(path, dtype='float32', always_2d=True)
  except (RuntimeError, sf.LibsndfileError) as e:
    return unreadable(path, e)
  problem = nonfinite_samples(samples)
  if problem:
    return f'{path}: {problem}'
  if not np.any(samples):
    return f'{path}: all samples are zero (silent clip)'
  return None


def read_header(path: str):
  """(soundfile's info, None), or (None, a problem line) for a file whose header cannot be
  read, that is truncated (`wav_truncation`) or that holds no samples."""
  try:
    info = sf.info(path)
  except (RuntimeError, sf.LibsndfileError) as e:
    return None, unreadable(path, e)
  problem = wav_truncation(path)
  if problem:
    return None, problem
  if info.frames == 0:
    return None, f'{path}: contains no samples'
  return info, None


def file_problem(path: str, mono: str = 'error') -> str | None:
  """A problem line for a single file that cannot be scored: unreadable, truncated, empty, not
  two channels (one, with mono='duplicate'), NaN/Inf or silent; None when it is fine."""
  info, problem = read_header(path)
  if problem:
    return problem
  if info.channels != 2 and not (info.channels == 1 and mono == 'duplicate'):
    return f'{path}: {info.channels} channel(s); expected 2 (near, far)'
  return content_problem(path)


def content_problems(paths, progress: bool = False) -> dict[str, str]:
  """{path: problem line} of `content_problem` over the files, in their order (a progress bar
  with `progress`)."""
  from tqdm import tqdm
  found = {p: content_problem(p) for p in tqdm(list(paths), desc='check audio', unit='clip',
                                                disable=not progress)}
  return {p: line for p, line in found.items() if line}
