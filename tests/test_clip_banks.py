"""Banks read from whole clips (scoring/clip_banks.py), against brute force, and their place in
the embed stage."""

import jax
import numpy as np
import pytest
import soundfile as sf

from asd_jax.audio import fbank as fbank_lib
from asd_jax.audio import steps
from asd_jax.data import layout, pipeline, synthetic
from asd_jax.inference import embed
from asd_jax.model import build
from asd_jax.scoring import clip_banks
from tests.conftest import tiny_config

AUDIO = pipeline.AudioConfig(clip_seconds=1.0, eval_windows=3)


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
  """Seven built-in fan clips of 2.3 s: three 1-s crops each, frames past the last patch."""
  root = str(tmp_path_factory.mktemp('clip_banks') / 'data')
  synthetic.generate(root, synthetic.SynthConfig(machines=('fan',), clip_seconds=2.3,
                                                 source_train=2, target_train=1,
                                                 test_per_group=1))
  return layout.scan_dataset(root).clips


@pytest.fixture(scope='module')
def beats_branch():
  """A BEATs branch whose gate looks trained (a random W_g), so channels really mix."""
  model, params = build.build_branch(tiny_config(), 'beats', num_attributes=3)
  params['fusion']['gate']['kernel'] = jax.random.normal(
      jax.random.PRNGKey(3), params['fusion']['gate']['kernel'].shape)
  return model, params


def test_registry_names_each_bank_of_the_beats_branch():
  assert [b.name for b in clip_banks.of_branch(clip_banks.REGISTRY, 'beats')] == [
      'fbank_level', 'logmel_level']
  assert clip_banks.of_branch(clip_banks.REGISTRY, 'audiomae') == []  # the kNN cosine branch
  assert clip_banks.of_branch(('logmel_level',), 'beats') == [clip_banks.REGISTRY['logmel_level']]
  assert clip_banks.bank_name('beats') == 'beats'
  assert clip_banks.bank_name('beats', 'fbank_level') == 'beats_fbank_level'


def test_fbank_level_reads_every_patch_of_the_whole_clip(clips, beats_branch, tmp_path):
  """Brute force in NumPy frame by frame and band by band: each 4-bin band's channels mixed by
  its patch row's gate averaged over the crops' patches (two-channel) or the near channel alone
  (left-duplicated), frames past the clip's last whole patch left out (float32: 1e-4). The
  embedding is the same with or without the bank; a clip shorter than a patch is a one-line
  error naming it."""
  model, params = beats_branch
  banks = clip_banks.of_branch(('fbank_level',), 'beats')
  out = embed.extract(model, params, clips, AUDIO, batch_size=2, banks=banks, progress=False)
  plain = embed.extract(model, params, clips, AUDIO, batch_size=2, progress=False)
  assert set(out) == set(plain) | {('fbank_level', 'two_channel'),
                                   ('fbank_level', 'left_duplicated')}
  for key in plain:
    np.testing.assert_array_equal(out[key], plain[key])
  band = clip_banks.FBANK_BAND_BINS
  bands = model.num_mel_bins // band
  for i, clip in enumerate(clips[:3]):
    wave = pipeline.read_wave(clip.path, 'error')
    crops = np.stack([wave[:, o:o + 16000] for o in pipeline.window_offsets(wave.shape[1],
                                                                           16000, 3)])
    gate = np.asarray(model.apply({'params': params}, crops)['gate'])  # [3, N], n = t·8 + row
    gate_of_row = gate.reshape(3, -1, 8).mean(axis=(0, 1))
    features = np.asarray(fbank_lib.encoder_fbank(wave, model.preset, model.num_mel_bins))
    frames = features.shape[1] // 16 * 16
    assert features.shape[1] > frames  # some frames do fall past the last patch
    for mode, g_row in (('two_channel', gate_of_row), ('left_duplicated', np.ones(8))):
      mixed = np.zeros((frames, bands))
      for frame in range(frames):
        for b in range(bands):
          g = g_row[b * band // 16]
          cell = features[:, frame, b * band:(b + 1) * band]
          mixed[frame, b] = g * cell[0].mean() + (1 - g) * cell[1].mean()
      np.testing.assert_allclose(out['fbank_level', mode][i],
                                 np.concatenate([mixed.mean(0), mixed.std(0)]),
                                 rtol=1e-4, atol=1e-4)
  short = str(tmp_path / 'short.wav')
  sf.write(short, np.zeros((2000, 2), np.float32), 16000)
  wanted = (rf'^{short}: 2000 samples \(0.125 s\) are too short: the whole-clip fbank level '
            r'needs at least 2800 \(0.175 s\)$')
  with pytest.raises(pipeline.DatasetError, match=wanted):
    embed.read_clip_banks(embed.bank_readers(model, banks), [pipeline.read_wave(short, 'error')],
                          [short], np.ones((1, 8), np.float32))


def test_fbank_level_compiles_once_per_length_bucket(beats_branch):
  """Clips of three lengths within one length bucket share one compile, and each gives what the
  fbank of its own samples gives (the zero padding changes no frame of the clip)."""
  import jax.numpy as jnp
  model, _ = beats_branch
  read = clip_banks.fbank_level_reader(model)
  rng = np.random.default_rng(5)
  bucket = steps.LENGTH_BUCKET
  waves = [rng.uniform(-0.5, 0.5, (2, n)).astype(np.float32)
           for n in (bucket + 1000, 2 * bucket - 7, 2 * bucket)]
  gates = rng.uniform(0, 1, (len(waves), 8)).astype(np.float32)
  compiles = []

  def count(event, duration, **kwargs):
    if event == '/jax/core/compile/backend_compile_duration':
      compiles.append(duration)

  read(waves[:1], gates[:1])  # the first compile
  jax.monitoring.register_event_duration_secs_listener(count)
  try:
    got = read(waves, gates)
  finally:
    jax.monitoring.unregister_event_duration_listener(count)
  assert compiles == []
  for wave, gate, level in zip(waves, gates, got['two_channel']):
    pair = fbank_lib.encoder_fbank(wave, model.preset, model.num_mel_bins)[None]
    np.testing.assert_allclose(level, clip_banks.clip_band_level(pair, jnp.asarray(gate[None]),
                                                                 clip_banks.FBANK_BAND_BINS)[0],
                               rtol=1e-5, atol=1e-5)


def test_logmel_level_is_the_reference_features_of_the_near_channel(clips, beats_branch):
  """Each whole clip's near-channel log-mel, per-bin mean and std over time, brute force from
  librosa's mel power spectrum of the file's first channel (n_fft 1024, hop 512, 128 bins,
  10·log10; float32: 1e-4), the same in both channel modes."""
  import librosa
  model, params = beats_branch
  out = embed.extract(model, params, clips, AUDIO, batch_size=2,
                      banks=clip_banks.of_branch(('logmel_level',), 'beats'), progress=False)
  for i, clip in enumerate(clips):
    wave, rate = sf.read(clip.path, dtype='float32')
    power = librosa.feature.melspectrogram(y=wave[:, 0], sr=rate, n_fft=1024, hop_length=512,
                                           n_mels=128, power=2.0)
    decibels = 10 * np.log10(np.maximum(power, 1e-30))
    expected = np.concatenate([decibels.mean(axis=1), decibels.std(axis=1)])
    for mode in ('two_channel', 'left_duplicated'):
      np.testing.assert_allclose(out['logmel_level', mode][i], expected, rtol=1e-4, atol=1e-4)


def test_banks_read_in_chunks_equal_one_clip_at_a_time(beats_branch):
  """Chunks of mixed clip lengths give each clip's values of a chunk of one (fbank level: the
  same computation, exactly; log-mel level: one `log_mel` call per length, 1e-6), and a bad clip
  in a later chunk is named by its own name."""
  model, _ = beats_branch
  readers = embed.bank_readers(model, clip_banks.of_branch(clip_banks.REGISTRY, 'beats'))
  rng = np.random.default_rng(0)
  waves = [rng.uniform(-0.5, 0.5, (2, n)).astype(np.float32)
           for n in (32000, 24000, 32000, 40000, 24000)]
  names = [f'clip{i}.wav' for i in range(len(waves))]
  gates = rng.uniform(0, 1, (len(waves), 8)).astype(np.float32)
  chunked = embed.read_clip_banks(readers, waves, names, gates, chunk=2)
  single = embed.read_clip_banks(readers, waves, names, gates, chunk=1)
  assert chunked.keys() == single.keys() and len(chunked) == 4
  for key in chunked:
    assert chunked[key].shape[0] == len(waves)
    np.testing.assert_allclose(chunked[key], single[key], rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(chunked['fbank_level', 'two_channel'],
                                single['fbank_level', 'two_channel'])
  waves[3] = waves[3][:, :1000]
  with pytest.raises(pipeline.DatasetError, match='^clip3.wav: 1000 samples .* too short'):
    embed.read_clip_banks(readers, waves, names, gates, chunk=2)
