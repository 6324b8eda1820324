"""Export a finished run as a detector folder that scores new recordings (asd-jax score).

asd-jax export --workdir=W --output=D [--system=task2_1] [--data_dir=DATA]

Writes D: the system's trained encoders with LoRA merged (Orbax), the model and audio settings,
per machine type and section the normal reference banks (Ledoit-Wolf means and precisions, the
kNN bank, the clip banks), the robust-z calibrations, the fusion weights and the decision
thresholds, and a manifest (system, package version, source workdir, creation time). Scoring
needs nothing else. --system: task2_1 .. task2_4 or reference_logmel (the log-mel reference).
Give the run's --data_dir when it did not use the built-in dataset; the stages the system comes
from must be finished.
"""
from absl import flags

from asd_jax.cli import common

_WORKDIR = flags.DEFINE_string('workdir', None, 'a workdir of `asd-jax run`', required=True)
_OUTPUT = flags.DEFINE_string('output', None, 'the detector folder to write', required=True)
_SYSTEM = flags.DEFINE_string('system', 'task2_1', 'the system to export: task2_1 .. task2_4 or '
                              'reference_logmel')
_DATA = flags.DEFINE_string('data_dir', None, 'the run\'s dataset (default: the built-in one in '
                            'W/data)')


def main(argv):
  common.reject_positional(argv)
  from asd_jax.data import layout
  from asd_jax.inference import detector
  from asd_jax.io import WorkdirError, folder_bytes
  try:
    path = detector.export(_WORKDIR.value, _OUTPUT.value, _SYSTEM.value, _DATA.value)
  except layout.DatasetError as e:
    common.fail_lines(e.problems)
  except WorkdirError as e:
    common.fail(str(e))
  print(f'{_SYSTEM.value} exported to {path} ({folder_bytes(path) / 1e6:.1f} MB)')
