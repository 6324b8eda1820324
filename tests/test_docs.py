"""The documentation stays true: the data-flow picture is drawn from the code, and every file
README links to exists."""
import os
import re
import subprocess
import sys

from tests.conftest import REPO


def test_dataflow_picture_is_drawn_from_the_code(tmp_path):
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
