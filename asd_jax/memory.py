"""Peak resident memory of this process, per stage of a run (W/memory.json).

Linux keeps a high-water mark of the resident set (VmHWM) that writing 5 to
/proc/self/clear_refs resets, so each stage's own peak can be read; elsewhere the figure is the
process's peak so far (getrusage), which only ever grows. The reset also resets what getrusage
and wait4 report as the process's peak: after it, the run's peak is its largest stage peak.

With glibc, the heap's free pages go back to the kernel at each stage and every few seconds
(`release_free_heap`, `keep_heap_compact`): a run's stages decode thousands of clips into large
transient buffers while keeping small arrays between them, and without this the heap kept
growing with the clips, mostly free (4x scale run, after baselines: 579 MB free of an 830 MB
heap).
"""
from __future__ import annotations

import ctypes
import resource
import sys
import threading
import time

# How often the free pages of the heap go back to the kernel while a job runs.
TRIM_INTERVAL_SECONDS = 2.0
_trimming = threading.Lock()
_trimmer: threading.Thread | None = None


def _glibc():
  try:
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, 'malloc_trim') else None
  except OSError:
    return None


def keep_heap_compact(interval: float = TRIM_INTERVAL_SECONDS) -> None:
  """Starts (once per process) a daemon thread that hands the heap's free pages back every
  `interval` seconds (glibc; elsewhere no-op). Cheaper than keeping large buffers out of the
  heap (mallopt's mmap threshold at 128 KiB cost the clip banks 57 % more time at 4x)."""
  global _trimmer
  libc = _glibc()
  with _trimming:
    if libc is None or _trimmer is not None:
      return

    def trim_forever():
      while True:
        time.sleep(interval)
        libc.malloc_trim(0)

    _trimmer = threading.Thread(target=trim_forever, name='heap-trim', daemon=True)
    _trimmer.start()


def release_free_heap() -> None:
  """Hands the heap's free pages back to the kernel (glibc's malloc_trim; elsewhere no-op)."""
  libc = _glibc()
  if libc is not None:
    libc.malloc_trim(0)


def reset_peak() -> None:
  """Starts a new high-water mark where the kernel allows it, from a heap without free pages."""
  release_free_heap()
  try:
    with open('/proc/self/clear_refs', 'w') as f:
      f.write('5')
  except OSError:
    pass


def peak_rss_mb() -> int:
  """Peak resident set of this process since the last reset_peak (Linux), in MB."""
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith('VmHWM:'):
          return round(int(line.split()[1]) / 1024)
  except OSError:
    pass
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
  return round(peak / (1024 * 1024 if sys.platform == 'darwin' else 1024))
