"""asd-jax inspect --data_dir=D: validate a DCASE-layout dataset and print its summary."""
import sys

from absl import flags

from asd_jax.cli import common

from asd_jax.data import layout
from asd_jax.data.summary import summary_table

_DATA = flags.DEFINE_string('data_dir', None, 'dataset root (holds dev_data/ and/or eval_data/)',
                            required=True)
_STRICT = flags.DEFINE_bool('strict', True, 'stop at the first bad file; --nostrict skips and '
                            'counts bad files instead')


def main(argv):
  common.reject_positional(argv)
  try:
    manifest = layout.scan_dataset(_DATA.value, strict=_STRICT.value)
  except layout.DatasetError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  print(summary_table(manifest))
