"""Run the whole job: train, embed, score, baselines, evaluate (resumable).

asd-jax run [--data_dir=D] --workdir=W [--config=configs/X.py --config.field=value]

The whole job: (without --data_dir, the built-in synthetic dataset is written to W/data first)
train every configured branch, embed all clips, score the submitted systems task2_1..task2_4 and
the official autoencoder baselines, write W/submission/<system>/ and, where labels are known,
W/results.md, W/results.csv (laid out like the report's Table 1) and W/plots/. Rerunning resumes:
finished stages are skipped. Before any stage works, the run prints its clips, the space it will
write and an estimate of its time, and stops in one line if the disk (or --max_hours) is short.
"""
from absl import flags

from asd_jax.cli import common

_DATA = flags.DEFINE_string('data_dir', None, 'DCASE-layout dataset root (default: make the '
                            'built-in synthetic dataset in W/data)')
_WORKDIR = flags.DEFINE_string('workdir', 'workdir', 'output folder (resumed when it exists)')
_MAX_HOURS = flags.DEFINE_float('max_hours', 0.0, 'refuse, before any stage runs, a dataset '
                                 'whose estimated run time exceeds this (0: no limit)')
_CONFIG = common.define_config_flag()
_STRICT = common.define_strict_flag()


def main(argv):
  common.reject_positional(argv)
  config = common.prepared_config(_CONFIG)
  from asd_jax import job
  from asd_jax.data import layout
  from asd_jax.evaluation.submission import SubmissionError
  from asd_jax.io import WorkdirError
  try:
    job.run_job(config, _DATA.value, _WORKDIR.value, strict=_STRICT.value,
                max_hours=_MAX_HOURS.value)
  except layout.DatasetError as e:
    common.fail_lines(e.problems)
  except (SubmissionError, WorkdirError) as e:
    common.fail(str(e))
