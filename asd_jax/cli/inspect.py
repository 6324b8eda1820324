"""Validate a DCASE-layout dataset and print its summary.

asd-jax inspect --data_dir=D [--nostrict]

Reads every clip's header and decodes its samples: names each bad file in one line (truncated,
NaN/Inf or all-zero samples, a channel count or sample rate other than the rest's, far shorter
than its machine's other clips, misnamed or misplaced, broken ground truth) and exits 1; with
--nostrict the bad files are left out and counted. Then prints clips per machine, section,
domain, split and label, the attributes and the audio format.
"""
from absl import flags

from asd_jax.cli import common

from asd_jax.data import layout
from asd_jax.data.summary import summary_table

_DATA = flags.DEFINE_string('data_dir', None, 'dataset root (holds dev_data/ and/or eval_data/)',
                            required=True)
_STRICT = common.define_strict_flag()


def main(argv):
  common.reject_positional(argv)
  try:
    manifest = layout.checked_dataset(_DATA.value, _STRICT.value)
  except layout.DatasetError as e:
    common.fail_lines(e.problems)
  print(summary_table(manifest))
