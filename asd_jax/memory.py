"""Peak resident memory of this process, per stage of a run (W/memory.json).

Linux keeps a high-water mark of the resident set (VmHWM) that writing 5 to
/proc/self/clear_refs resets, so each stage's own peak can be read; elsewhere the figure is the
process's peak so far (getrusage), which only ever grows. The reset also resets what getrusage
and wait4 report as the process's peak: after it, the run's peak is its largest stage peak.
"""
from __future__ import annotations

import resource
import sys


def reset_peak() -> None:
  """Starts a new high-water mark where the kernel allows it."""
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
