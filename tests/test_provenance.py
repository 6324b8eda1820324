"""Stage identity (asd_jax/provenance.py): reads are noted, verdicts name what changed."""
import os

import ml_collections
import numpy as np
import pytest

from asd_jax import provenance


def config():
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.optim = ml_collections.ConfigDict({'learning_rate': 1e-3, 'warmup_steps': 20})
  c.train = ml_collections.ConfigDict({'steps': 4, 'keep_checkpoints': 2})
  c.lora = ml_collections.ConfigDict({'targets': ('q', 'v'), 'rank': 8})
  c.score = ml_collections.ConfigDict({'decision_quantile': 0.9})
  return c


def test_the_view_notes_every_leaf_read_and_nothing_else():
  reads = {}
  view = provenance.ConfigReads(config(), reads)
  assert view.optim.learning_rate == 1e-3
  assert view['lora']['targets'] == ('q', 'v')
  assert dict(**view.train) == {'steps': 4, 'keep_checkpoints': 2}  # the mapping protocol
  assert reads == {'optim.learning_rate': 1e-3, 'lora.targets': ['q', 'v'], 'train.steps': 4}
  assert view.get('missing', 'x') == 'x' and 'seed' in view
  with pytest.raises(TypeError, match='a stage reads the config'):
    view.seed = 1
  with pytest.raises(AttributeError):
    view.no_such_field
  derived = provenance.with_value(view, 'lora.rank', 2)
  assert derived.lora.rank == 2 and 'lora.rank' not in reads  # chosen by the job, not the user
  plain = provenance.with_value(config(), 'lora.rank', 2)
  assert plain.lora.rank == 2


def _recorded(ledger, name, inputs, body, **kwargs):
  with ledger.recording(ledger.verdict(name, inputs), **kwargs) as run:
    body(run.config)
  return run


def test_verdicts_name_what_changed(tmp_path):
  workdir = str(tmp_path)
  weights = tmp_path / 'weights'
  weights.mkdir()
  (weights / 'params.bin').write_bytes(np.arange(4.0).tobytes())
  ledger = provenance.Ledger(workdir, config())
  assert ledger.verdict('train', {'clips': 'A'}).state == 'missing'

  def train(c):
    provenance.note_files(str(weights))  # what a checkpoint loader does
    return c.optim.learning_rate, c.train.steps

  _recorded(ledger, 'train', {'clips': 'A'}, train, outputs=[str(weights)])
  identity = ledger.identity('train')
  assert ledger.verdict('train', {'clips': 'A'}).done
  assert ledger.verdict('train', {'clips': 'B'}).why == 'clips A -> B'
  unread = config()
  unread.score.decision_quantile = 0.5  # a field the stage never read: still done
  assert provenance.Ledger(workdir, unread).verdict('train', {'clips': 'A'}).done
  changed = config()
  changed.optim.learning_rate = 0.5
  verdict = provenance.Ledger(workdir, changed).verdict('train', {'clips': 'A'})
  assert (verdict.state, verdict.line()) == ('redo', 'train: redo (optim.learning_rate 0.001 -> 0.5)')
  longer = config()
  longer.train.steps = 8
  assert provenance.Ledger(workdir, longer).verdict('train', {'clips': 'A'},
                                                    extendable=('train.steps',)).state == 'extend'
  assert provenance.Ledger(workdir, longer).verdict('train', {'clips': 'A'}).state == 'redo'
  shorter = config()
  shorter.train.steps = 2
  assert provenance.Ledger(workdir, shorter).verdict(
      'train', {'clips': 'A'}, extendable=('train.steps',)).state == 'redo'

  # Downstream: consumes the stage's identity.
  _recorded(ledger, 'embed', {'train': identity}, lambda c: c.seed)
  (weights / 'params.bin').write_bytes(np.ones(4).tobytes())  # same shape, other values
  assert ledger.verdict('train', {'clips': 'A'}).why == f'{weights} changed'
  _recorded(ledger, 'train', {'clips': 'A'}, train, outputs=[str(weights)])
  assert ledger.identity('train') != identity
  assert ledger.verdict('embed', {'train': ledger.identity('train')}).why == 'train was redone'
  os.rename(weights, tmp_path / 'gone')
  assert 'weights is missing' in ledger.verdict('train', {'clips': 'A'}).why


def test_an_interrupted_stage_resumes_only_under_the_same_reads(tmp_path):
  ledger = provenance.Ledger(str(tmp_path), config())
  with pytest.raises(KeyboardInterrupt):
    with ledger.recording(ledger.verdict('train', {})) as run:
      run.config.optim.learning_rate
      run.save_partial()  # a checkpoint was written
      raise KeyboardInterrupt  # killed before the stage finished
  assert ledger.verdict('train', {}).state == 'resume'
  assert ledger.identity('train') == provenance._ABSENT  # not finished: nothing consumes it
  changed = config()
  changed.optim.learning_rate = 0.5
  assert provenance.Ledger(str(tmp_path), changed).verdict('train', {}).state == 'redo'
  # The resumed run inherits the reads that shaped the state it carries on.
  resumed = ledger.verdict('train', {})
  with ledger.recording(resumed) as run:
    pass  # nothing left to do: the last checkpoint was the final one
  assert ledger.load('train')['config'] == {'optim.learning_rate': 1e-3}


def test_folder_digest_covers_names_and_bytes(tmp_path):
  (tmp_path / 'a').write_bytes(b'1')
  first = provenance.folder_digest(str(tmp_path))
  assert provenance.folder_digest(str(tmp_path)) == first
  (tmp_path / 'a').write_bytes(b'2')
  second = provenance.folder_digest(str(tmp_path))
  os.rename(tmp_path / 'a', tmp_path / 'b')
  assert len({first, second, provenance.folder_digest(str(tmp_path))}) == 3
