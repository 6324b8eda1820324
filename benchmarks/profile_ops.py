"""Where the time goes: per-op-kind profile of the encoders and the LoRA step, JAX beside PyTorch.

python -m benchmarks.profile_ops [--cases=beats,audiomae,train] [--batch=4] [--layers=12]
                                 [--seconds=10] [--rounds=1] [--json=F]

JAX side: `jax.profiler` traces a few steady-state calls; every executed XLA thunk (the events
that carry an `hlo_op` stat) is mapped to its HLO instruction in the compiled module and from
there to an op kind, through the instruction's `op_name` metadata (Flax module names and the
named scopes of asd_jax.encoders). A fusion that holds a dot counts as the kind of its largest
dot. PyTorch side: `torch.profiler` self times of the bench's mirror (benchmarks/torch_mirror.py),
classified by aten op name and the mirror's `record_function` ranges. Each framework runs in its
own process with every core, as in `asd-jax bench`. Shares are of the summed op time; op time
is split between ops that overlap, so the kinds add up to the busy wall time. The "rest" row is
all but the weight matmuls. `--rounds=N` profiles every case N times, round after round, and
gives the median of each row (this shared host moves a b=1 rest by tens of ms between runs).
The last line names the CPU and both frameworks' GEMM rate on the encoders' shapes
(benchmarks/machine.py).
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

KINDS = ('front end', 'weight matmuls', 'attention matmuls', 'softmax', 'fused attention',
         'layer norm', 'gelu', 'positional conv', 'relative position bias',
         'heads, loss, optimiser', 'other')

# op_name fragments (Flax module names, asd_jax named scopes) -> kind, first match wins.
JAX_SCOPES = (
    ('front_end', 'front end'), ('patch_embed', 'front end'),
    ('pos_conv', 'positional conv'),
    ('relative_position', 'relative position bias'), ('grep', 'relative position bias'),
    ('fused_attention', 'fused attention'),
    ('attention_scores', 'attention matmuls'), ('attention_values', 'attention matmuls'),
    ('attention_layout', 'attention matmuls'),
    ('softmax', 'softmax'),
    ('gelu', 'gelu'),
    ('layer_norm', 'layer norm'), ('/norm1', 'layer norm'), ('/norm2', 'layer norm'),
    ('/norm/', 'layer norm'),
    ('/q/', 'weight matmuls'), ('/k/', 'weight matmuls'), ('/v/', 'weight matmuls'),
    ('/qkv/', 'weight matmuls'), ('/out/', 'weight matmuls'), ('/fc1/', 'weight matmuls'),
    ('/fc2/', 'weight matmuls'), ('post_extract_proj', 'weight matmuls'),
    ('arcface', 'heads, loss, optimiser'), ('fusion', 'heads, loss, optimiser'),
    ('projection', 'heads, loss, optimiser'), ('optax', 'heads, loss, optimiser'),
    ('objective', 'heads, loss, optimiser'),
)
CONTAINERS = {'while', 'conditional', 'call', 'tuple', 'get-tuple-element', 'parameter',
              'constant', 'bitcast'}

_COMPUTATION = re.compile(r'^(?:ENTRY )?%?([\w.\-]+) \(.*\{$')
_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = (\(.*?\)|\S+) ([a-z\-]+)\(")
_CALLS = re.compile(r'calls=%?([\w.\-]+)')
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_SHAPE = re.compile(r'\[([\d,]*)\]')
_OPERAND = re.compile(r'%([\w.\-]+)')


def scope_kind(op_name: str) -> str:
  low = op_name.lower()
  return next((kind for key, kind in JAX_SCOPES if key in low), 'other')


def classify_hlo(hlo_text: str) -> dict[str, str | None]:
  """{instruction name: kind} for a compiled module's text; None for control flow (a while
  thunk's time is the sum of its body's thunks, which are counted themselves). A fusion with no
  `op_name` anywhere (XLA's CPU pipeline splits a long row reduce into a 'wrapped' reduce-window
  and a reduce, and names neither part) takes the kind of its first user that has one: the
  softmax's max and the layer norm's mean, not "other"."""
  computations, current, users = {}, None, collections.defaultdict(list)
  for line in hlo_text.splitlines():
    match = _COMPUTATION.match(line)
    if match:
      current = computations.setdefault(match.group(1), [])
      continue
    match = _INSTRUCTION.match(line)
    if match and current is not None:
      name, shape, opcode = match.groups()
      calls = _CALLS.search(line)
      op_name = _OP_NAME.search(line)
      current.append((name, shape, opcode, calls.group(1) if calls else None,
                      op_name.group(1) if op_name else ''))
      operands = line[match.end():].split(')', 1)[0]
      for operand in _OPERAND.findall(operands):
        users[operand].append(name)

  def dot_size(shape):
    dims = _SHAPE.search(shape)
    return int(np.prod([int(d) for d in dims.group(1).split(',') if d])) if dims else 0

  def kind_of(opcode, op_name, called):
    if called and called in computations and opcode not in ('while', 'conditional', 'call'):
      body = computations[called]
      dots = [(dot_size(s), n) for _, s, o, _, n in body if o in ('dot', 'convolution')]
      if dots:
        return scope_kind(max(dots)[1])
      root = body[-1][4] if body else op_name
      return scope_kind(root or op_name)
    return scope_kind(op_name)

  kinds, unnamed = {}, []
  for instructions in computations.values():
    for name, _, opcode, called, op_name in instructions:
      kinds[name] = None if opcode in CONTAINERS else kind_of(opcode, op_name, called)
      if kinds[name] == 'other' and not op_name and called in computations and not any(
          n for *_, n in computations[called]):
        unnamed.append(name)
  for name in unnamed:
    kinds[name] = next((kinds[user] for user in users[name]
                        if kinds.get(user) not in (None, 'other')), 'other')
  return kinds


def jax_thunk_intervals(trace_dir: str) -> list[tuple[str, int, int]]:
  """(hlo_op, start ns, end ns) of every executed thunk in a jax.profiler trace.

  A thunk runs from its start event (stat `hlo_op`) to its matching "end: <op>" event (joined
  by the flow id: `_p` on the start, `_c` on the end), not for the start event's own duration:
  dots and other asynchronous thunks return before their work is done.
  """
  from jax.profiler import ProfileData
  paths = glob.glob(f'{trace_dir}/**/*.xplane.pb', recursive=True)
  if not paths:
    raise SystemExit(f'error: {trace_dir}: jax.profiler wrote no trace')
  starts, ends = [], {}
  for plane in ProfileData.from_file(paths[0]).planes:
    for line in plane.lines:
      for event in line.events:
        stats = dict(event.stats)
        if 'hlo_op' in stats:
          starts.append((stats['hlo_op'], stats.get('_p'), event.start_ns,
                         event.start_ns + event.duration_ns))
        elif event.name.startswith('end: ') and '_c' in stats:
          ends[stats['_c']] = event.start_ns + event.duration_ns
  return [(op, start, max(end, ends.get(flow, end))) for op, flow, start, end in starts]


def wall_shares(intervals: list[tuple[str, int, int]]) -> dict[str, float]:
  """{op: seconds of wall time}: each instant is split evenly between the thunks running
  then (independent thunks overlap), so the shares add up to the busy wall time."""
  points = sorted({t for _, start, end in intervals for t in (start, end)})
  index = {t: i for i, t in enumerate(points)}
  delta = collections.defaultdict(list)
  for n, (_, start, end) in enumerate(intervals):
    delta[index[start]].append((n, +1))
    delta[index[end]].append((n, -1))
  shares, active = collections.Counter(), set()
  for i, t in enumerate(points[:-1]):
    for n, sign in delta[i]:
      (active.add if sign > 0 else active.discard)(n)
    if active:
      span = (points[i + 1] - t) / 1e9 / len(active)
      for n in active:
        shares[intervals[n][0]] += span
  return shares


def _jax_callable(case: dict):
  """(fn, compiled HLO text) for one case at the requested size."""
  import jax
  from . import throughput
  if case['case'] == 'train':
    fn, compiled = throughput.jax_train_step(case['layers'], case['batch'], case['seconds'],
                                             case.get('remat', 'none'))
    return fn, compiled.as_text()
  encoder = throughput._jax_encoder(case['case'], case['layers'], 'float32')
  wave = jax.device_put(np.random.default_rng(0).uniform(
      -0.5, 0.5, (case['batch'], int(case['seconds'] * 16000))).astype(np.float32))
  compiled = encoder._tokens.lower(encoder.params, wave).compile()
  return (lambda: compiled(encoder.params, wave).block_until_ready()), compiled.as_text()


def _warm_call_seconds(fn) -> float:
  """Wall seconds of one call of `fn` after a warm-up call."""
  fn()
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def jax_profile(case: dict) -> dict:
  import jax
  fn, hlo_text = _jax_callable(case)
  wall = _warm_call_seconds(fn)
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir)
    for _ in range(case['repeats']):
      fn()
    jax.profiler.stop_trace()
    intervals = jax_thunk_intervals(trace_dir)
  kinds = classify_hlo(hlo_text)
  times = wall_shares([i for i in intervals if kinds.get(i[0], 'other') is not None])
  by_kind = collections.Counter()
  unknown = 0.0
  for op, seconds in times.items():
    if op not in kinds:
      unknown += seconds
    by_kind[kinds.get(op, 'other')] += seconds
  top = sorted(times.items(), key=lambda item: -item[1])[:case.get('top', 0)]
  return {'wall_s': wall, 'kinds': {k: v / case['repeats'] for k, v in by_kind.items()},
          'unmapped_s': unknown / case['repeats'],
          'top_ops': [(op, kinds.get(op), s / case['repeats']) for op, s in top]}


TORCH_OPS = (
    ('scaled_dot_product', 'fused attention'), ('_softmax', 'softmax'),
    ('layer_norm', 'layer norm'), ('gelu', 'gelu'),
    ('aten::addmm', 'weight matmuls'), ('aten::mm', 'weight matmuls'),
    ('aten::bmm', 'attention matmuls'), ('aten::baddbmm', 'attention matmuls'),
)
TORCH_RANGES = {'front_end': 'front end', 'pos_conv': 'positional conv',
                'relative_position_bias': 'relative position bias',
                'heads': 'heads, loss, optimiser', 'optimiser': 'heads, loss, optimiser'}


def torch_profile(case: dict) -> dict:
  import torch
  from . import throughput, torch_mirror
  torch_mirror.PROFILE_RANGES = True
  fn = throughput.torch_callable(case['case'], case['layers'], case['batch'], case['seconds'])
  wall = _warm_call_seconds(fn)
  with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
    for _ in range(case['repeats']):
      fn()
  by_kind = collections.Counter()
  for event in prof.events():
    kind = next((k for key, k in TORCH_OPS if key in event.name), None)
    parent = event.cpu_parent
    while kind is None and parent is not None:
      kind = TORCH_RANGES.get(parent.name)
      parent = parent.cpu_parent
    if kind is None:
      kind = TORCH_RANGES.get(event.name, 'other')
    by_kind[kind] += event.self_cpu_time_total / 1e6
  return {'wall_s': wall, 'kinds': {k: v / case['repeats'] for k, v in by_kind.items()}}


def table(results: list[dict]) -> str:
  """Rows: op kinds; columns: seconds and share for each (case, framework)."""
  columns = [(f"{r['case']['case']} b={r['case']['batch']} {r['case']['framework']}", r)
             for r in results if 'kinds' in r]
  lines = ['| op kind | ' + ' | '.join(name for name, _ in columns) + ' |',
           '|---|' + '---|' * len(columns)]
  for kind in KINDS:
    cells = []
    for _, r in columns:
      total = sum(r['kinds'].values())
      seconds = r['kinds'].get(kind, 0.0)
      cells.append(f'{seconds * 1000:.0f} ms ({100 * seconds / total:.0f} %)' if seconds else '-')
    if any(c != '-' for c in cells):
      lines.append(f'| {kind} | ' + ' | '.join(cells) + ' |')
  lines.append('| summed op time | ' + ' | '.join(
      f"{1000 * r.get('summed_s', sum(r['kinds'].values())):.0f} ms" for _, r in columns) + ' |')
  lines.append('| rest (all but the weight matmuls) | ' + ' | '.join(
      f"{1000 * r.get('rest_s', rest_seconds(r['kinds'])):.0f} ms" for _, r in columns) + ' |')
  lines.append('| wall time per call | ' + ' | '.join(
      f"{1000 * r['wall_s']:.0f} ms" for _, r in columns) + ' |')
  return '\n'.join(lines)


def rest_seconds(kinds: dict[str, float]) -> float:
  """Op time outside the weight matmuls: what issue 42's rule compares between frameworks."""
  return sum(kinds.values()) - kinds.get('weight matmuls', 0.0)


def median_of_rounds(results: list[dict]) -> list[dict]:
  """One profile per (case, framework) from several rounds: the median of each op kind, of
  the summed op time, of the rest and of the wall time, each over the rounds (a kind a round
  lacks counts 0 there), with every round's rest in order ('round_rest_s')."""
  import statistics
  from . import throughput
  merged = []
  for runs in throughput.rounds_by_case(results):
    kinds = {kind for r in runs for kind in r['kinds']}
    merged.append({
        **runs[0],
        'kinds': {k: statistics.median(r['kinds'].get(k, 0.0) for r in runs) for k in kinds},
        'summed_s': statistics.median(sum(r['kinds'].values()) for r in runs),
        'rest_s': statistics.median(rest_seconds(r['kinds']) for r in runs),
        'wall_s': statistics.median(r['wall_s'] for r in runs),
        'round_rest_s': [rest_seconds(r['kinds']) for r in runs]})
  return merged


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--cases', default='beats,audiomae,train',
                      help='comma-separated: beats, audiomae, train (LoRA BEATs step)')
  parser.add_argument('--frameworks', default='jax,torch')
  parser.add_argument('--batch', type=int, default=4, help='clips (train: two-channel clips)')
  parser.add_argument('--layers', type=int, default=12)
  parser.add_argument('--seconds', type=float, default=10.0)
  parser.add_argument('--repeats', type=int, default=2, help='profiled calls per case')
  parser.add_argument('--remat', default='attention', help='train case: layers.REMAT_POLICIES')
  parser.add_argument('--top', type=int, default=0, help='also list the N slowest JAX ops')
  parser.add_argument('--rounds', type=int, default=1,
                      help='profile every case this many times, round after round; the table '
                           'gives the median of each row over the rounds')
  parser.add_argument('--json', help='also write the results as JSON to this file')
  parser.add_argument('--one', help=argparse.SUPPRESS)  # internal: one case, in this process
  args = parser.parse_args()
  if args.one:
    case = json.loads(args.one)
    profile = jax_profile if case['framework'] == 'jax' else torch_profile
    print(json.dumps(profile(case)))
    return
  if args.rounds < 1:
    parser.error(f'--rounds must be at least 1, got {args.rounds}')
  from asd_jax.cli import common
  common.check_output_file('--json', args.json)
  results = []
  for index in range(args.rounds):
    for name in args.cases.split(','):
      for framework in args.frameworks.split(','):
        case = dict(case=name, framework=framework, batch=args.batch, layers=args.layers,
                    seconds=args.seconds, repeats=args.repeats, remat=args.remat, top=args.top)
        proc = subprocess.run([sys.executable, '-m', 'asd_jax.benchmarks.profile_ops', '--one',
                               json.dumps(case)], capture_output=True, text=True)
        if proc.returncode != 0:
          raise SystemExit(f'error: profiling {name} ({framework}) failed: '
                           f'{(proc.stderr.strip().splitlines() or ["no output"])[-1]}')
        results.append({'case': case, 'round': index,
                        **json.loads(proc.stdout.strip().splitlines()[-1])})
        print(f"{name} {framework}, round {index + 1}: {1000 * results[-1]['wall_s']:.0f} ms "
              'per call', flush=True)
        for op, kind, seconds in results[-1].get('top_ops', []):
          print(f'  {1000 * seconds:8.1f} ms  {kind or "-":24s} {op}')
  merged = median_of_rounds(results)
  if args.rounds > 1:
    print(f'medians of {args.rounds} rounds; the rest round by round:')
    for r in merged:
      print(f"  {r['case']['case']} {r['case']['framework']}: " + ', '.join(
          f'{1000 * seconds:.0f}' for seconds in r['round_rest_s']) + ' ms')
  print(table(merged))
  from . import machine, throughput
  gemm = {framework: throughput.run_in_subprocess({'kind': 'gemm', 'framework': framework},
                                                  timeout=600).get('gemm_gflops')
          for framework in args.frameworks.split(',')}
  print(machine.describe({'JAX' if k == 'jax' else 'PyTorch': v for k, v in gemm.items()}))
  if args.json:
    from asd_jax.io import atomic_write_text
    atomic_write_text(args.json, json.dumps({'cpu': machine.cpu_model(), 'gemm_gflops': gemm,
                                             'rounds': args.rounds, 'profiles': results,
                                             'medians': merged}, indent=2))


if __name__ == '__main__':
  main()
