"""The documentation stays true: the data-flow picture is drawn from the code, and every file
README links to exists."""
import os
import re
import subprocess
import sys

from tests.conftest import REPO


def test_dataflow_picture_is_drawn_from_the_code(tmp_path):
  """The boxes' numbers come from the config it is given and every box names a module that
  exists; the script draws a PNG."""
  import importlib.util

  from asd_jax.configs import default
  spec = importlib.util.spec_from_file_location('dataflow', os.path.join(REPO, 'docs',
                                                                          'dataflow.py'))
  dataflow = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(dataflow)
  config = default.get_config()
  config.lora.rank, config.score.knn_k, config.score.beats_weight = 5, 7, 0.6
  config.score.clip_banks = ('logmel_level',)
  first, second, heads = dataflow.steps(config)
  text = ' '.join(f'{title} {detail}' for title, detail, _ in (*first, *second, heads))
  for value in ('r=5', 'k=7', 'w = 0.6', 'whole-clip log-mel level'):
    assert value in text, value
  assert 'fbank level' not in text
  for _, _, module in (*first, *second, heads):
    assert os.path.exists(os.path.join(REPO, module)), module
  out = str(tmp_path / 'dataflow.png')
  drawn = subprocess.run([sys.executable, os.path.join(REPO, 'docs', 'dataflow.py'), '--output',
                          out], capture_output=True, text=True, timeout=300)
  assert drawn.returncode == 0, drawn.stderr
  with open(out, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_readme_links_resolve():
  with open(os.path.join(REPO, 'README.md')) as f:
    links = re.findall(r'\]\(([^)#]+)\)', f.read())
  assert 'docs/results.md' in links
  missing = [l for l in links if not l.startswith('http') and
             not os.path.exists(os.path.join(REPO, l))]
  assert not missing, missing
