"""Converter: every official key consumed or deliberately dropped; bad files get one line."""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from checkpoints_convert import convert, official_layout, tables
from checkpoints_convert.__main__ import main
from tests.conftest import REPO, fixture_path


def test_every_beats_key_is_consumed(beats_small_dir):
  state = convert.read_torch_file(fixture_path('beats_small.pt'))['model']
  handled = set()
  for rule in tables.BEATS_RULES + [tables.Rule(k, (), tables.same) for k in tables.BEATS_SPECIAL]:
    handled |= {k for k in state if rule.regex().match(k)}
  assert handled == set(state)
  converted = convert.convert_beats(convert.read_torch_file(fixture_path('beats_small.pt')), 'x')
  assert converted.kind == 'pretrained' and converted.dropped == []


def test_every_audiomae_key_is_consumed_or_dropped():
  checkpoint = convert.read_torch_file(fixture_path('audiomae_small_pretrained.pth'))
  converted = convert.convert_audiomae(checkpoint, 'x', num_heads=4)
  state = checkpoint['model']
  consumed = {k for rule in tables.AUDIOMAE_RULES for k in state if rule.regex().match(k)}
  assert consumed | set(converted.dropped) == set(state)
  assert not consumed & set(converted.dropped)
  assert 'mask_token' in converted.dropped and all(
      k == 'mask_token' or k.startswith('decoder_') for k in converted.dropped)
  assert converted.kind == 'pretrained'


def test_finetuned_audiomae_is_recognised(tmp_path):
  path = str(tmp_path / 'ft.pth')
  official_layout.save_audiomae(path, official_layout.audiomae_state_dict(
      width=64, depth=1, mlp_dim=128, finetuned_classes=5))
  converted = convert.convert_audiomae(convert.read_torch_file(path), path, num_heads=2)
  assert converted.kind == 'fine-tuned' and converted.config.num_classes == 5
  assert 'fc_norm' in converted.params and 'norm' not in converted.params


def _save_beats_variant(path, edit):
  import torch
  ckpt = torch.load(fixture_path('beats_small.pt'), weights_only=True)
  edit(ckpt)
  torch.save(ckpt, path)


def _bad_inputs(tmp):
  """(name, argv, expected words) for every kind of bad input the issue lists."""
  beats = fixture_path('beats_small.pt')
  mae = fixture_path('audiomae_small_pretrained.pth')
  text = tmp / 'notes.pt'
  text.write_text('not a checkpoint\n')
  truncated = tmp / 'truncated.pt'
  truncated.write_bytes(open(beats, 'rb').read()[:400_000])
  missing_key = tmp / 'missing_key.pt'
  _save_beats_variant(missing_key, lambda c: c['model'].pop('encoder.layers.1.fc2.weight'))
  bad_shape = tmp / 'bad_shape.pt'

  def reshape(c):
    c['model']['encoder.layers.0.fc1.weight'] = c['model']['encoder.layers.0.fc1.weight'][:200]
  _save_beats_variant(bad_shape, reshape)
  return [
      ('missing file', ['beats', '--input', str(tmp / 'nope.pt')], 'no such file'),
      ('not a checkpoint', ['beats', '--input', str(text)], 'not a PyTorch checkpoint'),
      ('truncated', ['beats', '--input', str(truncated)], 'truncated or corrupt'),
      ('beats as audiomae', ['audiomae', '--input', beats], 'BEATs checkpoint'),
      ('audiomae as beats', ['beats', '--input', mae], 'not a BEATs checkpoint'),
      ('missing key', ['beats', '--input', str(missing_key)], 'lack the tensor'),
      ('mis-shaped key', ['beats', '--input', str(bad_shape)], 'has shape'),
  ]


def test_bad_inputs_get_one_clear_line_and_write_nothing(tmp_path, capsys):
  for name, argv, words in _bad_inputs(tmp_path):
    out_dir = tmp_path / f'out_{name.replace(" ", "_")}'
    assert main(argv + ['--output', str(out_dir)]) == 1, name
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, (name, err)
    assert words in err and argv[2] in err, (name, err)
    assert not out_dir.exists(), name
  assert not [p for p in os.listdir(tmp_path) if '.tmp-' in p]


def test_command_line_error_has_no_traceback(tmp_path):
  text = tmp_path / 'x.pt'
  text.write_text('hello')
  proc = subprocess.run([sys.executable, '-m', 'checkpoints_convert', 'beats', '--input',
                         str(text), '--output', str(tmp_path / 'out')], cwd=REPO,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines() == [f'error: {text}: not a PyTorch checkpoint '
                                              '(neither a zip archive nor a pickle)']


def test_reconversion_replaces_the_folder_atomically(tmp_path, beats_small_dir, monkeypatch):
  """A second conversion replaces the folder whole; one that dies while writing leaves the
  first conversion as it was, loadable, and no staging folder beside it."""
  import orbax.checkpoint as ocp

  from asd_jax.encoders.checkpoint import load_converted
  out = str(tmp_path / 'conv')
  assert main(['beats', '--input', fixture_path('beats_small.pt'), '--output', out]) == 0
  first = sorted(os.listdir(out))
  before = load_converted(out)[0]
  real_save = ocp.StandardCheckpointer.save

  def dies_while_writing(self, directory, *args, **kwargs):
    real_save(self, directory, *args, **kwargs)
    raise KeyboardInterrupt  # after the new parameters are on disk, before the swap

  other = tmp_path / 'other.pt'  # other values, so a write in place would show
  _save_beats_variant(other, lambda c: c['model'].update(
      {'encoder.layers.0.fc1.weight': 2 * c['model']['encoder.layers.0.fc1.weight']}))
  monkeypatch.setattr(ocp.StandardCheckpointer, 'save', dies_while_writing)
  with pytest.raises(KeyboardInterrupt):
    main(['beats', '--input', str(other), '--output', out])
  monkeypatch.undo()
  other.unlink()
  assert sorted(os.listdir(tmp_path)) == ['conv'] and sorted(os.listdir(out)) == first
  after = load_converted(out)[0]
  for x, y in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True):
    np.testing.assert_array_equal(x, y)
  assert main(['beats', '--input', fixture_path('beats_small.pt'), '--output', out]) == 0
  assert sorted(os.listdir(out)) == first == ['config.json', 'params']
  assert sorted(os.listdir(tmp_path)) == ['conv']


def test_refuses_to_overwrite_a_foreign_folder(tmp_path, capsys):
  out = tmp_path / 'precious'
  out.mkdir()
  (out / 'data.txt').write_text('keep me')
  assert main(['beats', '--input', fixture_path('beats_small.pt'), '--output', str(out)]) == 1
  assert 'refusing to overwrite' in capsys.readouterr().err
  assert (out / 'data.txt').read_text() == 'keep me'


def test_relative_position_bucket_edges():
  from asd_jax.encoders.beats import relative_position_buckets
  b = relative_position_buckets(1000, 320, 800)
  rel = np.arange(1000)[None, :] - np.arange(1000)[:, None]
  assert b[0, 0] == 0 and b[5, 4] == 1 and b[4, 5] == 160 + 1
  assert b[0, 79] == 160 + 79 and b[0, 80] == 160 + 80  # exact below 80, log from 80
  # float32, as the reference: the last bucket starts at 778 (float64 would say 777)
  assert b[0, 777] == 318 and b[0, 778] == 319 and b[0, 999] == 319 and b[999, 0] == 159
  assert ((b >= 0) & (b < 320)).all() and (b[rel > 0] >= 160).all()


def _refusals(tmp):
  """(name, argv, expected words) for the refusals beyond a wrong or damaged file: each a file
  one edit away from a good one."""
  import fractions
  mae = fixture_path('audiomae_small_pretrained.pth')
  empty = tmp / 'empty.pt'
  empty.write_bytes(b'')
  unsafe = tmp / 'unsafe.pt'
  _save_beats_variant(unsafe, lambda c: c.update(note=fractions.Fraction(1, 3)))
  extra = tmp / 'extra.pt'
  _save_beats_variant(extra, lambda c: c['model'].update(
      {'encoder.layers.0.extra.weight': c['model']['encoder.layers.0.fc1.weight']}))
  shared = tables.SHARED_REL_BIAS.format(i=1)
  differs = tmp / 'differs.pt'
  _save_beats_variant(differs, lambda c: c['model'].update({shared: c['model'][shared] + 1.0}))
  text_entry = tmp / 'text_entry.pt'
  _save_beats_variant(text_entry,
                      lambda c: c['model'].update({'encoder.layers.0.fc1.weight': 'weights'}))
  return [
      ('empty file', ['beats', '--input', str(empty)], 'empty file'),
      ('unsafe unpickle', ['beats', '--input', str(unsafe)], 'refused to unpickle'),
      ('extra key', ['beats', '--input', str(extra)],
       "unexpected keys for BEATs: ['encoder.layers.0.extra.weight']"),
      ('relative position bias differs', ['beats', '--input', str(differs)],
       f'{shared} differs from layer 0'),
      ('audiomae width without heads', ['audiomae', '--input', mae],
       'matches no released AudioMAE; pass --num_heads'),
      ('non-tensor entry', ['beats', '--input', str(text_entry)],
       "entry 'encoder.layers.0.fc1.weight' is not a tensor"),
  ]


def test_each_refusal_is_one_line_naming_the_file_and_writes_nothing(tmp_path, capsys):
  for name, argv, words in _refusals(tmp_path):
    out_dir = tmp_path / f'out_{name.replace(" ", "_")}'
    assert main(argv + ['--output', str(out_dir)]) == 1, name
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and err.startswith(f'error: {argv[2]}: '), (name, err)
    assert words in err, (name, err)
    assert not out_dir.exists(), name


def test_an_unwritable_output_folder_is_one_line_naming_it(tmp_path, capsys):
  blocker = tmp_path / 'a_file'
  blocker.write_text('not a folder')
  out = blocker / 'converted'
  assert main(['beats', '--input', fixture_path('beats_small.pt'), '--output', str(out)]) == 1
  err = capsys.readouterr().err.strip()
  assert err.splitlines() == [err] and err.startswith(f'error: {out}: cannot write'), err
  assert blocker.read_text() == 'not a folder'


def test_finetuned_audiomae_classifies_as_the_official_head(tmp_path):
  """classify = head(fc_norm(mean of the patch tokens)), eps 1e-6, computed in NumPy from the
  official state dict's own tensors on the encoder's block output (float32: 1e-4)."""
  from asd_jax.encoders import load_encoder
  path, out = str(tmp_path / 'ft.pth'), str(tmp_path / 'ft')
  state = official_layout.audiomae_state_dict(width=64, depth=1, mlp_dim=128, finetuned_classes=5)
  official_layout.save_audiomae(path, state)
  assert main(['audiomae', '--input', path, '--output', out, '--num_heads', '2']) == 0
  encoder = load_encoder(out)
  wave = 0.1 * np.random.default_rng(0).standard_normal((2, 16000)).astype(np.float32)
  tokens = np.asarray(encoder(wave), np.float64)  # fine-tuned: the blocks' output, no norm
  tensor = lambda k: np.asarray(state[k], np.float64)
  pooled = tokens[:, 1:].mean(axis=1)
  mean, var = pooled.mean(-1, keepdims=True), pooled.var(-1, keepdims=True)
  normed = (pooled - mean) / np.sqrt(var + 1e-6) * tensor('fc_norm.weight') + tensor(
      'fc_norm.bias')
  expected = normed @ tensor('head.weight').T + tensor('head.bias')
  got = np.asarray(encoder.classify(wave))
  assert got.shape == (2, 5)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
