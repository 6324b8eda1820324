"""The research area (research/): the pre-training corpus and its run, the held-out families
and their evaluation; and that the package never imports it."""
import ast
import json
import os

import jax
import numpy as np
import pytest

from asd_jax.baselines import logmel_reference
from asd_jax.data import layout, machine_families, synthetic
from research.heldout import evaluate as heldout_eval
from research.heldout import families as heldout
from research.heldout import frozen_features
from research.pretraining import corpus, corpus_pretrain
from tests.conftest import REPO


def test_the_package_never_imports_the_research_area_or_held_out_generators():
  """Every module of asd_jax, read as Python: no import of research (or benchmarks by that
  name), and no held-out family among the built-in generator's."""
  for folder, _, files in os.walk(os.path.join(REPO, 'asd_jax')):
    for name in files:
      if not name.endswith('.py'):
        continue
      path = os.path.join(folder, name)
      with open(path) as f:
        tree = ast.parse(f.read(), path)
      for node in ast.walk(tree):
        if isinstance(node, ast.Import):
          modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
          modules = [node.module or '']
        else:
          continue
        for module in modules:
          assert module.split('.')[0] not in ('research', 'benchmarks', 'configs'), (path, module)
  assert not set(machine_families.BUILTIN) & set(heldout.FAMILIES)


def test_corpus_and_evaluation_families_are_apart():
  evaluated = set(machine_families.BUILTIN) | set(heldout.FAMILIES)
  assert not evaluated & set(corpus.FAMILIES)
  assert len(corpus.FAMILIES) >= 10
  assert {m for s in heldout.SETS.values() for m in s['machines']} == set(heldout.FAMILIES)
  sets = [set(s['machines']) for s in heldout.SETS.values()]
  assert sum(len(s) for s in sets) == len(set().union(*sets))  # no family in two sets


def test_corpus_clips_are_deterministic_and_varied():
  clips = [corpus.corpus_clip(3, i, 1.0) for i in range(len(corpus.FAMILIES))]
  for clip in clips:
    assert clip.shape == (2, 16000) and clip.dtype == np.float32
    assert np.isfinite(clip).all() and 0 < np.abs(clip).max() <= 0.9
  np.testing.assert_array_equal(clips[5], corpus.corpus_clip(3, 5, 1.0))
  assert not np.array_equal(clips[5], corpus.corpus_clip(4, 5, 1.0))
  pool = np.stack(clips).astype(np.float16)
  a = corpus_pretrain.corpus_batch(pool, 0, 7, 4, 8000)
  np.testing.assert_array_equal(a, corpus_pretrain.corpus_batch(pool, 0, 7, 4, 8000))
  assert a.shape == (8, 8000)
  assert not np.array_equal(a, corpus_pretrain.corpus_batch(pool, 0, 8, 4, 8000))


def test_corpus_batch_unit_pairs_are_one_family_cropped_at_independent_times(monkeypatch):
  """Each pool sample encodes (clip, channel, sample index), so every row says where it came
  from: with unit_pairs, rows 2i and 2i + 1 are the near and far channel of one clip, all
  clips of a batch are of one family, and the two channels' crops start apart."""
  monkeypatch.setattr(corpus_pretrain, 'GAIN_DB', 0.0)
  families = len(corpus.FAMILIES)
  clips, samples = 3 * families + 5, 4000
  code = (np.arange(clips)[:, None, None] * 100000 + np.arange(2)[None, :, None] * 50000
          + np.arange(20000)[None, None])
  offsets_differ = 0
  for step in range(20):
    rows = corpus_pretrain.corpus_batch(code.astype(np.float64), 0, step, 8, samples,
                                        unit_pairs=True).reshape(8, 2, samples)
    clip = rows[..., 0] // 100000
    channel = rows[..., 0] % 100000 // 50000
    start = rows[..., 0] % 50000
    np.testing.assert_array_equal(np.diff(rows, axis=-1), 1.0)  # contiguous crops
    assert (clip[:, 0] == clip[:, 1]).all() and (channel == [0, 1]).all()
    assert len(set(clip[:, 0] % families)) == 1
    offsets_differ += (start[:, 0] != start[:, 1]).sum()
  assert offsets_differ > 150  # of 160 pairs; equal starts happen by chance only
  same_start = corpus_pretrain.corpus_batch(code.astype(np.float64), 0, 3, 8, samples)
  assert (same_start[0::2, 0] % 50000 == same_start[1::2, 0] % 50000).all()


@pytest.mark.parametrize('machine', sorted(heldout.FAMILIES))
def test_heldout_anomalies_change_the_sound(machine):
  _, attributes, anomalies = heldout.FAMILIES[machine]
  attrs = {name: source[0] for name, source, _ in attributes}

  def render(anomaly):  # 6 s: the longest anomaly period (escalator's worn roller, one step in
    # twelve at 2.5 steps/s: 4.8 s) passes at least once
    return synthetic.machine_sound(heldout.REGISTRY[machine], attrs, anomaly, 0.4,
                                   np.random.default_rng(0), 96000)

  normal = render(None)
  assert np.isfinite(normal).all() and np.abs(normal).max() == pytest.approx(1, abs=1e-6)
  for anomaly in anomalies:
    changed = render(anomaly)
    assert np.isfinite(changed).all()
    # at severity 0.4 the change is at least 5 % of the normal sound's RMS
    assert np.std(changed - normal) > 0.05 * np.std(normal), anomaly


# The first source training clip of each family in its set at seed 0: the file name (the drawn
# attributes) and the mean |sample| of the written 16-bit WAV, as generated for the recorded
# results of docs/heldout.md. A changed stream, signal or layout breaks the record's data.
FROZEN_CLIPS = {
    'pump': ('spm_6_prs_1', 1219.1), 'slider': ('vel_3_len_2', 1097.7),
    'conveyor': ('spd_3_load_2', 1242.8), 'compressor': ('rpm_1200_duty_5', 1213.2),
    'drill': ('spd_20_mat_1', 3391.7), 'stepper': ('pps_600_ratio_3', 1188.4),
    'grinder': ('rpm_2900_grit_1', 2549.5), 'robot_arm': ('spd_2_load_1', 1789.8),
    'sewing_machine': ('sps_15_fab_1', 1129.2), 'centrifuge': ('rpm_3000_vol_2', 4653.1),
    'printer': ('cps_100_mode_2', 2234.4), 'chain_drive': ('rpm_90_teeth_15', 1301.9),
    'packaging_machine': ('ppm_40_film_2', 997.3), 'shredder': ('rpm_1500_sheets_2', 2311.6),
    'hoist': ('spd_2_load_3', 983.9), 'blower': ('rpm_1500_prs_1', 3384.3),
    'washing_machine': ('rpm_50_kg_2', 1121.8), 'escalator': ('spd_1_gear_2', 1025.7),
    'vacuum_pump': ('rpm_1450_vanes_4', 2006.4), 'lathe': ('rpm_900_feed_1', 1130.1),
    'loom': ('ppm_300_width_1', 1213.6), 'jaw_crusher': ('rpm_300_rock_2', 1179.6),
    'peristaltic_pump': ('rpm_60_rollers_3', 1003.9), 'mixer': ('rpm_18_fill_2', 1338.5),
    'sander': ('rpm_10000_grit_2', 2845.6), 'cooling_tower': ('rpm_220_flow_1', 1727.6),
    'bottle_capper': ('bpm_180_cap_1', 986.4), 'hammer_mill': ('rpm_1800_hammers_6', 1719.1),
    'vibrating_screen': ('hz_15_amp_1', 1597.7), 'sliding_door': ('cpm_10_mass_1', 1001.8),
    'treadmill': ('kmh_8_incline_1', 1059.1), 'riveter': ('rivets_30_bar_6', 1063.3),
    'film_projector': ('fps_24_reel_2', 1296.2), 'dishwasher': ('arm_30_prog_1', 1077.2),
    'knitting_machine': ('cpm_30_gauge_5', 946.3), 'tumble_dryer': ('rpm_45_load_2', 1090.3),
    'coffee_machine': ('grind_1_cup_1', 955.6), 'paper_folder': ('spm_90_fold_2', 952.5),
    'cnc_router': ('krpm_18_seg_1', 1117.8), 'wind_turbine': ('rpm_12_wind_2', 2386.5),
    'air_conditioner': ('hz_45_fan_2', 3254.0), 'elevator': ('mps_1_floors_4', 956.9),
    'band_saw': ('mpm_1200_tpi_2', 3015.3), 'ball_mill': ('rpm_19_fill_2', 1130.2),
    'paint_shaker': ('hz_8_cans_2', 2982.3),
}


@pytest.mark.parametrize('set_name', sorted(heldout.SETS))
def test_heldout_clips_are_the_recorded_ones(set_name, tmp_path):
  import soundfile as sf
  config = synthetic.SynthConfig(seed=0, **heldout.SETS[set_name])
  n = int(config.clip_seconds * 16000)
  for machine in config.machines:
    name, _ = synthetic._write_clip((config, heldout.REGISTRY[machine], str(tmp_path), n,
                                     (machine, 'train', 'source', 'normal', 0)))
    attributes, level = FROZEN_CLIPS[machine]
    assert name == f'section_00_source_train_normal_0000_{attributes}.wav'
    wave, _ = sf.read(tmp_path / 'dev_data' / 'raw' / machine / 'train' / name, dtype='int16')
    assert np.abs(wave.astype(float)).mean() == pytest.approx(level, rel=5e-3), machine


def _tiny_pretraining_config():
  from asd_jax.configs import default
  config = default.get_config()
  config.data.clip_seconds = 1.0
  config.pretrain.batch_size = 2
  config.beats.tiny.encoder_layers = 1
  return config


def test_corpus_pretraining_resumes_to_the_same_weights(tmp_path, monkeypatch):
  """An interrupted run, resumed, ends with the weights of an uninterrupted one."""
  from asd_jax.encoders.checkpoint import load_converted
  config = _tiny_pretraining_config()
  whole = corpus_pretrain.pretrain_on_corpus(config, 'beats', str(tmp_path / 'whole'),
                                             str(tmp_path / 'whole_out'), 4, 6, save_every=2,
                                             progress=False)
  assert whole['resumed_from'] == 0 and whole['final']['step'] == 4

  real_parts = corpus_pretrain.pretraining_parts

  def interrupted_parts(*args):
    parts = real_parts(*args)
    real_step, calls = parts.step, []

    def step(*a):
      calls.append(1)
      if len(calls) == 3:
        raise KeyboardInterrupt
      return real_step(*a)

    parts.step = step
    return parts

  monkeypatch.setattr(corpus_pretrain, 'pretraining_parts', interrupted_parts)
  with pytest.raises(KeyboardInterrupt):
    corpus_pretrain.pretrain_on_corpus(config, 'beats', str(tmp_path / 'cut'),
                                       str(tmp_path / 'cut_out'), 4, 6, save_every=2,
                                       progress=False)
  assert not os.path.exists(tmp_path / 'cut_out')
  monkeypatch.setattr(corpus_pretrain, 'pretraining_parts', real_parts)
  resumed = corpus_pretrain.pretrain_on_corpus(config, 'beats', str(tmp_path / 'cut'),
                                               str(tmp_path / 'cut_out'), 4, 6, save_every=2,
                                               progress=False)
  assert resumed['resumed_from'] == 2
  with open(tmp_path / 'cut' / 'beats' / 'loss.jsonl') as f:
    assert [json.loads(line)['step'] for line in f] == [4]  # log_every is 10
  whole_params, cut_params = (jax.tree_util.tree_leaves(load_converted(str(tmp_path / d))[0])
                              for d in ('whole_out', 'cut_out'))
  for x, y in zip(whole_params, cut_params, strict=True):
    np.testing.assert_array_equal(x, y)


def test_heldout_eval_variants_and_summary():
  config = heldout_eval.variant_config('random_init', 2)
  assert (config.seed, config.beats.checkpoint, config.pretrain.steps) == (2, '', 0)
  assert heldout_eval.variant_config('default', 0).beats.checkpoint
  record = {'default/A/0': {'scores': {'task2_1': 70.0, 'Log-mel reference': 80.0}},
            'default/A/1': {'scores': {'task2_1': 72.0, 'Log-mel reference': 84.0}},
            'bank_raw/A/0': {'scores': {'task2_1': 60.0, 'Log-mel reference': 80.0}}}
  table = heldout_eval.summary_markdown(record)
  assert '| default (2 seeds) | 71.0 ± 1.0 | 82.0 ± 2.0 |' in table
  assert '| bank_raw (1 seed) | 60.0 ± 0.0 | 80.0 ± 0.0 |' in table
  measured_with = heldout_eval.environment()  # recorded beside every run's scores
  assert measured_with['packages']['jax'] == jax.__version__
  assert measured_with['packages']['numpy'] == np.__version__
  assert set(measured_with['packages']) == set(heldout_eval.MEASURED_WITH)
  assert measured_with['commit'] is None or len(measured_with['commit']) >= 7


def test_heldout_eval_defines_a_variant_from_the_command_line():
  name = heldout_eval.define_variant('candidate:beats.checkpoint=/x/beats,embed.windows=5,'
                                     'model.pooling=mean')
  try:
    config = heldout_eval.variant_config(name, 1)
    assert (config.beats.checkpoint, config.embed.windows, config.model.pooling) == (
        '/x/beats', 5, 'mean')
    default = heldout_eval.variant_config('default', 1)
    assert config.audiomae.checkpoint == default.audiomae.checkpoint
  finally:
    del heldout_eval.VARIANTS[name]
  for bad in ('candidate', 'candidate:embed.window=5', 'default:embed.windows=5',
              'candidate:embed.windows'):
    with pytest.raises(ValueError, match='--define'):
      heldout_eval.define_variant(bad)


def test_frozen_features_benchmark_scores_like_the_reference_detector(tmp_path):
  """research/heldout/frozen_features.py: its log-mel row is the reference detector's features and
  its official score the evaluator's, so its encoder rows stand on the same scale."""
  from asd_jax.encoders.encoder import load_encoder
  from asd_jax.evaluation import metrics
  from asd_jax.pretrained import shipped_encoder
  root = str(tmp_path / 'data')
  synthetic.generate(root, synthetic.SynthConfig(machines=('slider',), clip_seconds=1.0,
                                                 source_train=12, target_train=4,
                                                 test_per_group=3), families=heldout.REGISTRY)
  clips = layout.scan_dataset(root).clips
  beats, audiomae = load_encoder(shipped_encoder('beats')), load_encoder(shipped_encoder('audiomae'))
  rows = [frozen_features.clip_features(c, beats, audiomae) for c in clips]
  assert {k: v.shape for k, v in rows[0].items()} == {
      'log-mel mean + std': (256,), 'BEATs fbank mean + std': (256,),
      'BEATs token mean': (128,), 'BEATs token mean + std': (256,),
      'BEATs token mean + std per frequency row': (8 * 256,), 'AudioMAE token mean': (128,),
      'AudioMAE token mean + std': (256,)}
  logmel = np.stack([r['log-mel mean + std'] for r in rows])
  np.testing.assert_array_equal(logmel[0], logmel_reference.clip_features(clips[0].path))
  train = [c for c in clips if c.split == 'train']
  test = [c for c in clips if c.split == 'test']
  _, scores = logmel_reference.reference_scores(train, test)
  expected = metrics.summarise([metrics.SectionResult('slider', '00', metrics.section_metrics(
      [int(c.label == 'anomaly') for c in test], scores, [c.domain for c in test]))])
  assert frozen_features.official_score(logmel, clips, 'none') == \
      pytest.approx(100 * expected[metrics.OFFICIAL_SCORE], abs=1e-9)

