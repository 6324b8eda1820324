"""Measure speed and memory of the JAX path against PyTorch in one run.

asd-jax bench [--quick] [--only=REGEX] [--rounds=N] [--json=F] [--torch_reference=PATH]


Throughput of the JAX path against PyTorch, measured in the same run: encoder forward
(full-size BEATs and AudioMAE, 10-s clips, batch 1/4/16 on a CPU, 1/16/64 on a GPU where
PyTorch runs on CUDA), a LoRA training step, and kNN / Mahalanobis scoring against
scikit-learn; compile time apart, peak memory per case, GFLOP/s against the measured matmul
peak. --quick uses reduced sizes (4 layers, 4-s clips) and the same
code paths, in under 3 minutes on a 2-core CPU. On a shared host, --rounds=N runs every case N
times, round after round, and the table gives each case's best round beside every round's ratio.
"""
from absl import flags

from asd_jax.cli import common

_QUICK = flags.DEFINE_bool('quick', False, 'reduced sizes, same code paths')
_JSON = flags.DEFINE_string('json', None, 'also write the results as JSON to this file')
_ONLY = flags.DEFINE_string('only', None, "regular expression: run only the cases whose label "
                            "matches, e.g. 'forward b=(1|64)' or 'train'")
_ROUNDS = flags.DEFINE_integer('rounds', 1, 'run every case this many times, one round after '
                               'another; the table keeps each case\'s best round', lower_bound=1)
_REFERENCE = flags.DEFINE_string('torch_reference', None, 'checkout of microsoft/unilm: time '
                                 'its beats/ BEATs module instead of the PyTorch mirror')


def main(argv):
  common.reject_positional(argv)
  common.check_output_file('--json', _JSON.value)
  from asd_jax.benchmarks.throughput import run_bench
  run_bench(_QUICK.value, _JSON.value, _REFERENCE.value, only=_ONLY.value,
            rounds=_ROUNDS.value)
