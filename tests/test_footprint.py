"""footprint.py: the run's size said up front, and a run that would not fit refused in one line
before any stage works."""
import collections
import os

import pytest

from asd_jax import footprint, job
from asd_jax.configs import default
from asd_jax.data import layout, synthetic
from asd_jax.io import WorkdirError


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('footprint') / 'data')
  synthetic.generate(root, synthetic.SynthConfig(machines=('fan',), clip_seconds=2.0,
                                                 source_train=6, target_train=2,
                                                 test_per_group=2))
  return root


def test_estimate_counts_the_clips_and_grows_with_the_data_and_the_encoders(data, tmp_path):
  manifest = layout.scan_dataset(data)
  config = default.get_config()
  small = footprint.estimate(config, manifest, str(tmp_path))
  assert small.clips == 16 and small.audio_seconds == pytest.approx(32.0)
  assert small.data_bytes == sum(os.path.getsize(c.path) for c in manifest.clips)
  double = footprint.estimate(config, layout.Manifest(manifest.root, manifest.clips * 2),
                              str(tmp_path))
  assert double.seconds > small.seconds and double.write_bytes > small.write_bytes
  # the report's encoders (ViT-B size) cost hundreds of times the tiny ones' matmuls
  config.beats.checkpoint = config.audiomae.checkpoint = ''
  config.beats.tiny = dict(encoder_layers=12, encoder_embed_dim=768, encoder_ffn_embed_dim=3072,
                           encoder_attention_heads=12)
  config.audiomae.tiny = {}
  base = footprint.encoder_macs_per_second(default.get_config(), 'beats')
  assert footprint.encoder_macs_per_second(config, 'beats') > 100 * base
  assert footprint.estimate(config, manifest, str(tmp_path)).seconds > 10 * small.seconds


def test_a_run_that_would_not_fit_the_disk_or_the_hours_stops_before_any_stage(
    data, tmp_path, monkeypatch, capsys):
  config = default.get_config()
  config.data.num_workers = 0
  workdir = str(tmp_path / 'w')
  with pytest.raises(WorkdirError, match=r'^\d+ clips would take about \d+ s, over '
                     r'--max_hours=1e-05; raise it'):
    job.run_job(config, data, workdir, progress=False, max_hours=1e-5)
  assert '16 clips, 0.0 h of audio' in capsys.readouterr().out
  assert not os.path.exists(os.path.join(workdir, 'embeddings'))  # nothing ran

  Usage = collections.namedtuple('Usage', 'total used free')
  monkeypatch.setattr(footprint.shutil, 'disk_usage', lambda path: Usage(10**9, 10**9, 10**5))
  with pytest.raises(WorkdirError) as error:
    job.run_job(config, data, workdir, progress=False)
  assert str(error.value).startswith(f'{os.path.abspath(workdir)}: the run needs about ')
  assert str(error.value).endswith('GB free (16 clips); free space or use another --workdir')
  assert '\n' not in str(error.value)
  assert not os.path.exists(os.path.join(workdir, 'embeddings'))
