"""The benchmark's code paths at toy sizes (no timing asserts) and its PyTorch mirror's parity."""
import argparse

import numpy as np
import pytest

torch = pytest.importorskip('torch', reason='the PyTorch side of the benchmark needs torch')

from asd_jax.benchmarks import throughput, torch_mirror  # noqa: E402
from tests.conftest import fixture_path  # noqa: E402


def test_torch_mirror_matches_official_fixtures():
  ckpt = torch.load(fixture_path('beats_small.pt'), weights_only=True)
  beats = torch_mirror.load_official(torch_mirror.BEATsTorch(ckpt['cfg']), ckpt['model'])
  data = np.load(fixture_path('beats_small_io.npz'))
  with torch.inference_mode():
    np.testing.assert_allclose(beats(torch.from_numpy(data['wave'])).numpy(), data['features'],
                               atol=1e-4)  # measured 3.5e-5
  with torch.serialization.safe_globals([argparse.Namespace]):
    ckpt = torch.load(fixture_path('audiomae_small_pretrained.pth'), weights_only=True)
  mae = torch_mirror.load_official(torch_mirror.AudioMAETorch(128, 2, 4, 512), ckpt['model'])
  data = np.load(fixture_path('audiomae_small_io.npz'))
  with torch.inference_mode():
    np.testing.assert_allclose(mae(torch.from_numpy(data['wave'])).numpy(), data['tokens'],
                               atol=1e-4)  # measured 1.8e-5


@pytest.mark.parametrize('case', [
    {'kind': 'encoder', 'model': 'beats', 'batch': 1, 'framework': 'jax'},
    {'kind': 'encoder', 'model': 'beats', 'batch': 1, 'framework': 'torch'},
    {'kind': 'encoder', 'model': 'audiomae', 'batch': 1, 'framework': 'jax', 'dtype': 'bfloat16',
     'attention': 'fused'},
    {'kind': 'encoder', 'model': 'audiomae', 'batch': 1, 'framework': 'torch'},
    {'kind': 'train', 'framework': 'jax'},
    {'kind': 'train', 'framework': 'torch'},
    {'kind': 'train', 'framework': 'jax', 'remat': 'full', 'dtype': 'bfloat16', 'batch': 2},
    {'kind': 'scoring', 'method': 'knn', 'framework': 'jax'},
    {'kind': 'scoring', 'method': 'mahalanobis', 'framework': 'sklearn'},
    {'kind': 'detector', 'encoders': 'tiny', 'batch': 2, 'framework': 'jax'},
])
def test_bench_cases_run_at_toy_size(case):
  result = throughput.CASES[case['kind']]({**case, 'size': 'toy'})
  assert result['step_s'] > 0 and result['clips_per_s'] > 0 and result['cpu_s_per_item'] > 0
  if case.get('framework') == 'jax' and case['kind'] == 'encoder':
    assert result['gflop'] > 0
  if case['kind'] == 'detector':
    assert result['forward_clips_per_s'] > 0 and result['features_clips_per_s'] > 0
    assert result['detector_mb'] > 0


def test_plan_and_table():
  cases = throughput.plan('quick', True, None)
  kinds = {(c['kind'], c.get('framework')) for c in cases}
  assert {('encoder', 'jax'), ('encoder', 'torch'), ('encoder', 'torch_compile'),
          ('train', 'torch'), ('scoring', 'sklearn'), ('matmul', None), ('gemm', 'jax'),
          ('gemm', 'torch')} <= kinds
  fake = [{'case': c, 'step_s': 0.5, 'clips_per_s': c.get('batch', 1) / 0.5, 'compile_s': 1.0,
           'peak_rss_mb': 100.0, 'gflop': 10.0,
           'cpu_s_per_item': 0.4 if c.get('framework') == 'jax' else 0.5} for c in cases]
  text = throughput.table(fake, peak=100.0)
  row = next(line for line in text.splitlines() if line.startswith('beats forward b=4 '))
  # 10 GFLOP per batch of 4 in 0.5 s: 20 GFLOP/s, 20 % of a 100 GFLOP/s peak, which would
  # allow 100 / 2.5 = 40 clips/s
  # the same wall time, and a quarter more CPU time per clip for the reference
  assert '1.00x' in row and '1.25x' in row and '20 % / 20 %' in row and '40.00' in row
  remat = next(line for line in text.splitlines() if 'remat=attention' in line)
  assert '1.00x' in remat  # measured against the one PyTorch training step


def test_rounds_run_every_case_again_and_the_table_keeps_each_best_round(monkeypatch, capsys):
  """--rounds=2: the machine's rates once, every other case twice; the table gives each case's
  fastest round and the ratio of every round, a failed round as '-'."""
  step = {('jax', 0): 4.0, ('torch', 0): 2.0, ('jax', 1): 2.0, ('torch', 1): None}
  calls = []

  def fake_run(case, timeout):
    calls.append(case)
    if case['kind'] == 'matmul':
      return {'step_s': 1.0, 'gflops': 100.0}
    if case['kind'] == 'gemm':
      return {'gemm_gflops': {'layer': 100.0}}
    seconds = step[case['framework'], sum(c == case for c in calls) - 1]
    if seconds is None:
      return {'error': 'killed'}
    return {'step_s': seconds, 'clips_per_s': case['batch'] / seconds, 'compile_s': 1.0,
            'cpu_s_per_item': seconds, 'peak_rss_mb': 10.0}

  monkeypatch.setattr(throughput, 'run_in_subprocess', fake_run)
  report = throughput.run_bench(True, None, None, progress=False, only='beats forward b=1$',
                                rounds=2)
  kinds = [c['kind'] for c in calls]
  assert kinds.count('matmul') == 1 and kinds.count('gemm') == 2  # JAX's and PyTorch's rate
  assert kinds.count('encoder') == 4 and report['rounds'] == 2
  assert [r['round'] for r in report['results'] if r['case']['kind'] == 'encoder'] == [0, 0, 1, 1]
  row = next(line for line in capsys.readouterr().out.splitlines()
             if line.startswith('beats forward b=1 '))
  # best rounds: JAX 0.5 clips/s (round 1) against PyTorch's 0.5 (round 0); by round, JAX
  # 0.25 against 0.5, then no PyTorch figure
  assert '1.00x' in row and row.rstrip().endswith('0.50, -')
  with pytest.raises(ValueError, match='rounds must be at least 1'):
    throughput.run_bench(True, None, None, progress=False, rounds=0)


def test_device_check_runs_the_batch_64_encoders_and_the_dcase_lora_step():
  import re
  cases = throughput.plan('full_gpu', True, None, 'gpu')
  chosen = {(throughput.label(c), c.get('framework')) for c in cases
            if re.search(throughput.DEVICE_CHECK, throughput.label(c))}
  for model in ('beats', 'audiomae'):
    assert {(f'{model} forward b=64', f) for f in ('jax', 'torch', 'torch_compile')} <= chosen
    assert (f'{model} forward b=64 bfloat16 fused', 'jax') in chosen
  assert {('LoRA train step (BEATs) remat=attention b=32', 'jax'),
          ('LoRA train step (BEATs) remat=attention bfloat16 b=32', 'jax'),
          ('LoRA train step (BEATs) b=32', 'torch')} <= chosen
  assert not any('b=1' in name.split('forward')[-1] or 'scoring' in name for name, _ in chosen)
  fake = [{'case': c, 'step_s': 1.0, 'clips_per_s': c.get('batch', 1) / (
      0.5 if c.get('framework', 'jax') == 'jax' else 1.0), 'peak_device_mb': 10.0} for c in cases]
  text = throughput.table(fake, peak=100.0)
  row = next(line for line in text.splitlines()
             if line.startswith('LoRA train step (BEATs) remat=attention bfloat16 b=32'))
  assert '64.00' in row and '2.00x' in row  # against the PyTorch step at batch 32


def test_gpu_plan_runs_torch_on_cuda_or_says_why_not():
  cases = throughput.plan('full_gpu', True, None, 'gpu')
  assert {c['platform'] for c in cases} == {'gpu'}
  assert {c['batch'] for c in cases if c['kind'] == 'encoder'} == {1, 16, 64}
  compiled = {c['batch'] for c in cases if c.get('framework') == 'torch_compile'}
  assert compiled == {64}
  if not torch.cuda.is_available():
    case = {'kind': 'encoder', 'model': 'beats', 'batch': 1, 'framework': 'torch',
            'size': 'toy', 'platform': 'gpu'}
    with pytest.raises(SystemExit, match='no CUDA'):
      throughput.encoder_case(case)


def test_wall_shares_split_overlapping_ops_evenly():
  from asd_jax.benchmarks import profile_ops
  # a alone 0-10, a and b together 10-20, b alone 20-25 (ns): a 15, b 10, total = busy time
  shares = profile_ops.wall_shares([('a', 0, 20), ('b', 10, 25)])
  assert shares['a'] * 1e9 == pytest.approx(15) and shares['b'] * 1e9 == pytest.approx(10)


def test_profile_rounds_give_the_median_of_every_row():
  from asd_jax.benchmarks import profile_ops
  case = dict(case='audiomae', framework='jax', batch=1)
  rounds = [{'case': case, 'round': 0, 'wall_s': 1.0,
             'kinds': {'weight matmuls': 1.0, 'softmax': 0.2}},
            {'case': case, 'round': 1, 'wall_s': 3.0,
             'kinds': {'weight matmuls': 1.2, 'softmax': 0.4, 'other': 0.1}},
            {'case': case, 'round': 2, 'wall_s': 2.0,
             'kinds': {'weight matmuls': 1.1, 'softmax': 0.1, 'other': 0.3}}]
  (merged,) = profile_ops.median_of_rounds(rounds)
  assert merged['kinds'] == pytest.approx({'weight matmuls': 1.1, 'softmax': 0.2, 'other': 0.1})
  # rests 0.2, 0.5, 0.4: their median, not the median kinds' sum (0.3)
  assert merged['round_rest_s'] == pytest.approx([0.2, 0.5, 0.4])
  assert merged['rest_s'] == pytest.approx(0.4) and merged['wall_s'] == 2.0
  assert merged['summed_s'] == pytest.approx(1.5)
  text = profile_ops.table([merged])
  assert '| rest (all but the weight matmuls) | 400 ms |' in text
  assert '| summed op time | 1500 ms |' in text and '| wall time per call | 2000 ms |' in text


def test_op_kind_profile_names_the_encoder_parts():
  from asd_jax.benchmarks import profile_ops
  case = dict(case='beats', framework='jax', batch=1, layers=1, seconds=1.0, repeats=1)
  jax_kinds = profile_ops.jax_profile(case)['kinds']
  for kind in ('weight matmuls', 'attention matmuls', 'positional conv', 'front end'):
    assert jax_kinds.get(kind, 0) > 0, (kind, jax_kinds)
  # named kinds carry most of the time, not 'other'
  assert jax_kinds.get('other', 0) < 0.5 * sum(jax_kinds.values())
  torch_kinds = profile_ops.torch_profile({**case, 'framework': 'torch'})['kinds']
  for kind in ('weight matmuls', 'fused attention', 'positional conv', 'front end'):
    assert torch_kinds.get(kind, 0) > 0, (kind, torch_kinds)


def test_unnamed_reduce_fusions_take_the_kind_of_their_user():
  """XLA's CPU pipeline splits the softmax's row max into a reduce-window and a reduce and
  names neither wrapper: the named reduce that uses it gives the kind; a fusion with no named
  user stays 'other'."""
  from asd_jax.benchmarks import profile_ops
  hlo = """
%wrapped_rw_computation (p0: f32[4,513], p1: f32[]) -> f32[4,17] {
  %p0 = f32[4,513]{1,0} parameter(0)
  %p1 = f32[] parameter(1)
  ROOT %rw = f32[4,17]{1,0} reduce-window(%p0, %p1), window={size=1x32 stride=1x32}
}
%max_computation (q0: f32[4,17], q1: f32[]) -> f32[4] {
  %q0 = f32[4,17]{1,0} parameter(0)
  %q1 = f32[] parameter(1)
  ROOT %r = f32[4]{0} reduce(%q0, %q1), dimensions={1}, metadata={op_name="jit(f)/blocks/softmax/reduce_max"}
}
ENTRY %main (x: f32[4,513]) -> f32[4] {
  %x = f32[4,513]{1,0} parameter(0)
  %c = f32[] constant(0)
  %wrapped_reduce-window = f32[4,17]{1,0} fusion(%x, %c), kind=kLoop, calls=%wrapped_rw_computation
  %lonely = f32[4,17]{1,0} fusion(%x, %c), kind=kLoop, calls=%wrapped_rw_computation
  ROOT %wrapped_reduce = f32[4]{0} fusion(%wrapped_reduce-window, %c), kind=kLoop, calls=%max_computation, metadata={op_name="jit(f)/blocks/softmax/reduce_max"}
}
"""
  kinds = profile_ops.classify_hlo(hlo)
  assert kinds['wrapped_reduce'] == 'softmax'
  assert kinds['wrapped_reduce-window'] == 'softmax'
  assert kinds['lonely'] == 'other'


@pytest.mark.parametrize('framework', ['jax', 'torch'])
def test_gemm_rates_on_the_encoder_shapes(framework):
  """Each shape's rate, and the layer mix as the time-weighted combination of them (four
  768 -> 768 matmuls, one 768 -> 3072, one 3072 -> 768 a layer)."""
  from asd_jax.benchmarks import machine
  rates = machine.gemm_rates(framework, batch=1)
  assert set(rates) == {'768x768', '768x3072', '3072x768', 'layer'}
  assert all(rate > 0 for rate in rates.values())
  flops = {'768x768': 768 * 768, '768x3072': 768 * 3072, '3072x768': 3072 * 768}
  count = {'768x768': 4, '768x3072': 1, '3072x768': 1}
  total = sum(flops[k] * count[k] for k in flops)
  expected = total / sum(flops[k] * count[k] / rates[k] for k in flops)
  assert rates['layer'] == pytest.approx(expected, rel=1e-9)
  line = machine.describe({'JAX': rates})
  assert line.startswith(f'CPU: {machine.cpu_model()}, ') and f"JAX {rates['layer']:.0f}" in line
