"""asd-jax bench: JAX against PyTorch in one run, each case in a fresh process.

Cases: encoder forward (full-size BEATs / AudioMAE, random weights in the official layout,
converted by checkpoints_convert; 10-s clips; batch 1, 4, 16 on a CPU), one LoRA training step (two
channels, gated fusion, ArcFace heads; also with the layers rematerialised), and
normal-reference scoring (kNN k=3 cosine and Ledoit-Wolf Mahalanobis, 10 000 x 256 bank,
2 000 queries) against scikit-learn. Compile / warm-up time is reported apart from the
steady-state time (median of repeats); peak memory is the case process's maximum RSS (on a GPU
also the device's peak allocation); GFLOP/s counts the encoders' matmuls by hand. On a GPU the
PyTorch cases run on CUDA with TF32 matmuls allowed, as JAX computes float32 matmuls by default
there, and batches are larger so the device is busy.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

from . import machine

SIZES = {
    'full': dict(layers=12, seconds=10.0, batches=(1, 4, 16), repeats=5, train_batch=4,
                 bank=10000, queries=2000, dim=256),
    'quick': dict(layers=4, seconds=4.0, batches=(1, 4), repeats=3, train_batch=2,
                  bank=10000, queries=2000, dim=256),
    # An accelerator: batch 1 times launch latency, 64 keeps the GPU busy.
    'full_gpu': dict(layers=12, seconds=10.0, batches=(1, 16, 64), repeats=10, train_batch=16,
                     bank=10000, queries=2000, dim=256),
    # Code-path checks in the tests: one layer, one second, tiny banks.
    'toy': dict(layers=1, seconds=1.0, batches=(1,), repeats=1, train_batch=1,
                bank=300, queries=20, dim=16),
}


def _timed(fn, repeats: int) -> tuple[float, float, float]:
  """(first call seconds, median wall seconds and median process CPU seconds of `repeats`
  further calls). CPU time leaves out what the VM host steals, which on a shared machine moves
  wall times by up to 25 % between runs; both frameworks use every core, so CPU time compares
  the work each does."""
  start = time.perf_counter()
  fn()
  first = time.perf_counter() - start
  wall, cpu = [], []
  for _ in range(repeats):
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    wall.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)
  return first, statistics.median(wall), statistics.median(cpu)


def _beats_cfg(layers: int) -> dict:
  from checkpoints_convert.official_layout import BEATS_BASE_CFG
  return {**BEATS_BASE_CFG, 'encoder_layers': layers}


def _official_state(model: str, layers: int) -> tuple[dict, dict | None]:
  from checkpoints_convert import official_layout
  if model == 'beats':
    cfg = _beats_cfg(layers)
    return official_layout.beats_state_dict(cfg), cfg
  return official_layout.audiomae_state_dict(depth=layers), None


def _jax_encoder(model: str, layers: int, dtype: str, attention: str = 'matmul'):
  from asd_jax.encoders import Encoder
  from asd_jax.model.build import DTYPES
  from checkpoints_convert import convert
  state, cfg = _official_state(model, layers)
  converted = (convert.convert_beats({'cfg': cfg, 'model': state}, 'bench') if model == 'beats'
               else convert.convert_audiomae({'model': state}, 'bench'))
  return Encoder(converted.config, converted.params, dtype=DTYPES[dtype], attention=attention)


def _torch_device(case: dict):
  """CUDA when the JAX side of this run is on a GPU (TF32 matmuls, JAX's float32 default
  there), else the CPU with every core."""
  import torch
  if case.get('platform', 'cpu') == 'cpu':
    torch.set_num_threads(os.cpu_count())
    return torch.device('cpu')
  if not torch.cuda.is_available():
    raise SystemExit('error: JAX runs on a GPU but this torch build has no CUDA')
  torch.set_float32_matmul_precision('high')
  torch.backends.cudnn.allow_tf32 = True
  return torch.device('cuda')


def _synchronize(device) -> None:
  if device.type == 'cuda':
    import torch
    torch.cuda.synchronize()


def _torch_encoder(model: str, layers: int, reference: str | None, device):
  """The PyTorch encoder on `device`: the mirror, or the official BEATs from `reference`."""
  from . import torch_mirror
  state, cfg = _official_state(model, layers)
  if model == 'beats' and reference:
    sys.path.insert(0, os.path.join(reference, 'beats'))
    try:
      from BEATs import BEATs, BEATsConfig  # the official module (needs torchaudio)
    except ImportError as e:
      raise SystemExit(f'error: {reference}/beats: cannot import the official BEATs ({e})')
    import torch
    official = BEATs(BEATsConfig(cfg))
    official.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    official.to(device).eval()
    return lambda wave: official.extract_features(wave)[0]
  module = (torch_mirror.BEATsTorch(cfg) if model == 'beats'
            else torch_mirror.AudioMAETorch(depth=layers))
  return torch_mirror.load_official(module, state).to(device)


def encoder_case(case: dict) -> dict:
  size = SIZES[case['size']]
  wave = np.random.default_rng(0).uniform(-0.5, 0.5, (case['batch'], int(size['seconds'] * 16000))
                                          ).astype(np.float32)
  result = {}
  if case['framework'] == 'jax':
    import jax
    encoder = _jax_encoder(case['model'], size['layers'], case.get('dtype', 'float32'),
                           case.get('attention', 'matmul'))
    device_wave = jax.device_put(wave)
    fn = lambda: encoder(device_wave).block_until_ready()
    start = time.perf_counter()
    encoder._tokens.lower(encoder.params, device_wave).compile()
    result['compile_s'] = time.perf_counter() - start
    result['gflop'] = encoder_gflop(encoder.config, wave.shape[1]) * case['batch']
  else:
    fn = torch_callable(case['model'], size['layers'], case['batch'], size['seconds'],
                        _torch_device(case), compiled=case['framework'] == 'torch_compile',
                        reference=case.get('reference'))
  first, steady, cpu = _timed(fn, size['repeats'])
  result.setdefault('compile_s', first - steady)
  result.update(step_s=steady, clips_per_s=case['batch'] / steady,
                cpu_s_per_item=cpu / case['batch'])
  return result


def encoder_gflop(config, num_samples: int) -> float:
  """Matmul GFLOP of one clip through the encoder (2 per multiply-add), counted by hand:
  XLA's cost analysis counts a scanned layer once, not once per layer."""
  from asd_jax.audio import fbank as fbank_lib
  from asd_jax.encoders.config import BeatsConfig
  if isinstance(config, BeatsConfig):
    frames = fbank_lib.num_frames(num_samples)
    tokens = (frames // 16) * 8
    d, ffn, layers = config.width, config.encoder_ffn_embed_dim, config.encoder_layers
    macs = tokens * (256 * config.embed_dim + config.embed_dim * d)  # patches, projection
    macs += tokens * config.conv_pos * d * d // config.conv_pos_groups  # positional conv
    per_layer = tokens * (4 * d * d + 2 * d * ffn) + 2 * tokens * tokens * d
  else:
    tokens = config.num_patches + 1
    d, ffn, layers = config.width, config.mlp_dim, config.depth
    macs = config.num_patches * 256 * d
    per_layer = tokens * (4 * d * d + 2 * d * ffn) + 2 * tokens * tokens * d
  return 2 * (macs + layers * per_layer) / 1e9


def _train_inputs(batch: int, seconds: float):
  rng = np.random.default_rng(0)
  wave = rng.uniform(-0.5, 0.5, (batch, 2, int(seconds * 16000))).astype(np.float32)
  return wave, rng.integers(0, 8, batch), rng.integers(0, 2, batch)


def jax_train_step(layers: int, batch: int, seconds: float, remat: str = 'none',
                   dtype: str = 'float32'):
  """(fn, compiled): one LoRA BEATs training step on two-channel clips, as the trainer runs it
  (donated state, sharded batch; `dtype` the compute dtype, LoRA weights and optimiser state
  float32); fn runs it and waits for the loss, fn.compile_s is the time it took to compile."""
  import jax
  import ml_collections
  from asd_jax.encoders import LoRAConfig, build_module
  from asd_jax.encoders import lora as lora_lib
  from asd_jax.encoders.encoder import front_end_preset
  from asd_jax.model import ASDModel
  from asd_jax.model.build import DTYPES, is_trainable
  from asd_jax.train import step as step_lib
  wave, attribute, domain = _train_inputs(batch, seconds)
  encoder = _jax_encoder('beats', layers, 'float32')
  model = ASDModel(build_module(encoder.config, LoRAConfig(rank=8), DTYPES[dtype], remat),
                   front_end_preset(encoder.config), 128, num_attributes=8, dtype=DTYPES[dtype])
  params = model.init(jax.random.PRNGKey(0), wave[:1])['params']
  params = dict(params, encoder=lora_lib.overlay(params['encoder'], encoder.params))
  optim = ml_collections.ConfigDict(dict(learning_rate=1e-3, warmup_steps=1,
                                         weight_decay=1e-4, grad_clip_norm=1.0))
  tx, schedule = step_lib.make_optimizer(optim, 100)
  mesh = step_lib.data_mesh(jax.devices()[:1])
  state = step_lib.replicate(mesh, step_lib.create_train_state(params, tx, is_trainable, 0))
  arcface = ml_collections.ConfigDict(dict(scale=30.0, margin=0.5))
  batch_arrays = step_lib.shard_batch(mesh, {'wave': wave, 'attribute_id': attribute,
                                             'domain_id': domain})
  start = time.perf_counter()
  compiled = step_lib.compile_train_step(mesh, model=model, tx=tx, schedule=schedule,
                                         arcface=arcface).lower(state, batch_arrays).compile()
  holder = {'state': state}

  def fn():
    holder['state'], metrics = compiled(holder['state'], batch_arrays)
    metrics['loss'].block_until_ready()
  fn.compile_s = time.perf_counter() - start
  return fn, compiled


def torch_callable(model: str, layers: int, batch: int, seconds: float, device=None,
                   compiled: bool = False, reference: str | None = None):
  """fn running one PyTorch step: an encoder forward of `batch` clips (model 'beats' /
  'audiomae'; the mirror, or the official BEATs from `reference`) or, for model 'train', one
  LoRA BEATs training step of the mirror."""
  import torch
  from . import torch_mirror
  device = device or torch.device('cpu')
  if model != 'train':
    wave = np.random.default_rng(0).uniform(-0.5, 0.5, (batch, int(seconds * 16000)))
    module = _torch_encoder(model, layers, reference, device)
    module = torch.compile(module) if compiled else module
    tensor = torch.from_numpy(wave.astype(np.float32)).to(device)

    def forward():
      with torch.inference_mode():
        module(tensor)
      _synchronize(device)
    return forward
  wave, attribute, domain = _train_inputs(batch, seconds)
  net = torch_mirror.TwoChannelTorch(_torch_encoder('beats', layers, None, device).train(),
                                     num_attributes=8).to(device)
  trainable = [p for p in net.parameters() if p.requires_grad]
  optimizer = torch.optim.AdamW(trainable, 1e-3)
  tensors = tuple(torch.from_numpy(a).to(device) for a in (wave, attribute, domain))

  def step():
    optimizer.zero_grad()
    net.loss(*tensors).backward()
    with torch_mirror.profile_range('optimiser'):
      torch.nn.utils.clip_grad_norm_(trainable, 1.0)
      optimizer.step()
    _synchronize(device)
  return step


def train_case(case: dict) -> dict:
  size = SIZES[case['size']]
  batch = case.get('batch', size['train_batch'])
  if case['framework'] == 'jax':
    fn, _ = jax_train_step(size['layers'], batch, size['seconds'], case.get('remat', 'none'),
                           case.get('dtype', 'float32'))
  else:
    fn = torch_callable('train', size['layers'], batch, size['seconds'], _torch_device(case))
  first, steady, cpu = _timed(fn, size['repeats'])
  return dict(compile_s=getattr(fn, 'compile_s', first - steady), step_s=steady,
              clips_per_s=batch / steady, cpu_s_per_item=cpu / batch)


def scoring_case(case: dict) -> dict:
  size = SIZES[case['size']]
  rng = np.random.default_rng(0)
  bank = rng.standard_normal((size['bank'], size['dim'])).astype(np.float32)
  target = rng.standard_normal((size['bank'] // 100, size['dim'])).astype(np.float32) + 0.5
  queries = rng.standard_normal((size['queries'], size['dim'])).astype(np.float32)
  if case['framework'] == 'jax':
    from asd_jax.scoring import distances
    from asd_jax.scoring.ledoit_wolf import fit_ledoit_wolf
    if case['method'] == 'knn':
      fn = lambda: distances.knn_score(queries, bank, 3)
    else:
      banks = [fit_ledoit_wolf(bank), fit_ledoit_wolf(target)]
      fn = lambda: distances.min_mahalanobis(queries, banks)
  else:
    from sklearn.covariance import LedoitWolf
    from sklearn.neighbors import NearestNeighbors
    if case['method'] == 'knn':
      index = NearestNeighbors(n_neighbors=3, metric='cosine', algorithm='brute').fit(bank)
      fn = lambda: index.kneighbors(queries)[0].mean(axis=1)
    else:
      fits = [LedoitWolf().fit(bank), LedoitWolf().fit(target)]
      fn = lambda: np.sqrt(np.minimum(*[f.mahalanobis(queries) for f in fits]))
  first, steady, cpu = _timed(fn, size['repeats'])
  return dict(compile_s=first - steady, step_s=steady, clips_per_s=size['queries'] / steady,
              cpu_s_per_item=cpu / size['queries'])


def random_detector(path: str, encoders: str, batch: int):
  """Writes a task2_1 detector with random weights: the default config's shipped tiny encoders
  ('tiny') or full-size BEATs and AudioMAE under configs/dcase2026.py ('full'); its references
  fitted on the embeddings of 18 noise clips of one machine type (12 source, 6 target)."""
  import jax
  import jax.numpy as jnp
  from asd_jax.configs import dcase2026, default
  from asd_jax.encoders.config import LoRAConfig
  from asd_jax.inference import detector as detector_lib
  from asd_jax.model import build
  from asd_jax.scoring import systems
  config = (default if encoders == 'tiny' else dcase2026).get_config()
  config.embed.batch_size = batch
  branches = {}
  for index, branch in enumerate(('beats', 'audiomae')):
    if encoders == 'tiny':
      arch = build.architecture(config, branch)
    else:
      from checkpoints_convert import convert
      state, cfg = _official_state(branch, 12)
      arch = (convert.convert_beats({'cfg': cfg, 'model': state}, 'bench') if branch == 'beats'
              else convert.convert_audiomae({'model': state}, 'bench')).config
    model = build.branch_model(config, arch, 4, LoRAConfig())
    samples = int(round(config.data.clip_seconds * 16000))
    params = jax.jit(lambda r: model.init(r, jnp.zeros((1, 2, samples)))['params'])(
        jax.random.PRNGKey(index))
    branches[branch] = (model, params)
  system = systems.presets(config.score)[0]
  info = {'system': system.name, 'channel_mode': system.channel_mode, 'machines': {'fan': ['00']}}
  unfitted = detector_lib.Detector.from_models(info, config, {}, branches)
  rng = np.random.default_rng(1)
  noise = list(rng.uniform(-0.5, 0.5, (18, 2, 160000)).astype(np.float32))
  features = unfitted.features(noise)
  clips = [argparse.Namespace(machine='fan', split='train', section='00',
                              domain='source' if i < 12 else 'target') for i in range(18)]
  scorer = systems.SystemScorer(clips, {(name, system.channel_mode): values
                                        for name, values in features.items()}, config.score)
  references = {'fan': scorer.machine_reference(system, 'fan')[0]}
  detector_lib.write(path, info, config, references, branches)


def detector_case(case: dict) -> dict:
  """Scoring new recordings with an exported task2_1 detector (random_detector): load + first
  call (compile) seconds, clips/s for `batch` 10-s two-channel clips, the detector folder's size,
  and, on the same waves, the same models' encoder forward alone and the system's features (the
  forward and the clip banks read from the whole clips), so that the overhead of scoring over
  each is its own figure."""
  import tempfile
  from asd_jax.inference import detector as detector_lib
  from asd_jax.inference import embed
  from asd_jax.io import folder_bytes
  size, batch = SIZES[case['size']], case['batch']
  waves = list(np.random.default_rng(0).uniform(-0.5, 0.5, (batch, 2, int(size['seconds'] * 16000))
                                                ).astype(np.float32))
  machines, sections = ['fan'] * batch, ['00'] * batch
  with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, 'detector')
    random_detector(path, case['encoders'], batch)
    start = time.perf_counter()
    detector = detector_lib.Detector.load(path)
    detector.score_waves(waves, machines, sections)
    load_s = time.perf_counter() - start
    detector_mb = folder_bytes(path) / 1e6
  _, score_s, cpu = _timed(lambda: detector.score_waves(waves, machines, sections),
                           size['repeats'])

  def forward():
    for _, params, predict, _ in detector.models.values():
      embed.collect_outputs(predict, params, embed.wave_batches(waves, detector.audio, batch),
                            batch, batch)

  _, forward_s, _ = _timed(forward, size['repeats'])
  _, features_s, _ = _timed(lambda: detector.features(waves), size['repeats'])
  return dict(compile_s=load_s, step_s=score_s, clips_per_s=batch / score_s,
              cpu_s_per_item=cpu / batch, forward_clips_per_s=batch / forward_s,
              overhead=score_s / forward_s - 1, features_clips_per_s=batch / features_s,
              overhead_over_features=score_s / features_s - 1, detector_mb=detector_mb)


def matmul_case(case: dict) -> dict:
  """Measured float32 matmul peak of this machine at JAX's default precision (the best of JAX
  and NumPy on a CPU; TF32 tensor cores on a recent GPU), with the XLA CPU flags that
  `import asd_jax` sets, as in the encoder cases."""
  import asd_jax  # noqa: F401
  import jax
  on_cpu = case.get('platform', 'cpu') == 'cpu'
  n = 2048 if on_cpu else 8192
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n))
  f = jax.jit(lambda x: x @ x)
  best = _timed(lambda: f(a).block_until_ready(), 5)[1]
  if on_cpu:
    host = np.asarray(a)
    best = min(best, _timed(lambda: host @ host, 5)[1])
  return dict(step_s=best, gflops=2 * n**3 / best / 1e9)


def gemm_case(case: dict) -> dict:
  """This framework's float32 GEMM rates on the encoders' weight-matmul shapes
  (benchmarks/machine.py)."""
  from . import machine
  return {'gemm_gflops': machine.gemm_rates('torch' if case['framework'] == 'torch' else 'jax')}


CASES = {'encoder': encoder_case, 'train': train_case, 'scoring': scoring_case,
         'detector': detector_case, 'matmul': matmul_case,
         'gemm': gemm_case}


def run_in_subprocess(case: dict, timeout: float) -> dict:
  """One case in a fresh interpreter, so its peak RSS is its own."""
  proc = subprocess.run([sys.executable, '-m', 'asd_jax.benchmarks.throughput', json.dumps(case)],
                        capture_output=True, text=True, timeout=timeout)
  if proc.returncode != 0:
    tail = (proc.stderr.strip().splitlines() or ['no output'])[-1]
    return {'error': tail[:200]}
  return json.loads(proc.stdout.strip().splitlines()[-1])


def plan(size_name: str, torch_available: bool, reference: str | None,
         platform: str = 'cpu') -> list[dict]:
  size = SIZES[size_name]
  every_batch_compiled = size_name == 'full'
  frameworks = ['jax'] + (['torch', 'torch_compile'] if torch_available else [])
  cases = [{'kind': 'matmul'}]
  if platform == 'cpu':  # what bounds the encoder ratios here (benchmarks/machine.py)
    cases += [{'kind': 'gemm', 'framework': f} for f in ['jax'] + (['torch'] if torch_available
                                                                     else [])]
  for model in ('beats', 'audiomae'):
    for batch in size['batches']:
      for framework in frameworks:
        if framework == 'torch_compile' and not every_batch_compiled and (
            batch != size['batches'][-1]):
          continue  # torch.compile at the largest batch only (its compile is slow)
        cases.append({'kind': 'encoder', 'model': model, 'batch': batch,
                      'framework': framework, 'reference': reference})
  cases.append({'kind': 'encoder', 'model': 'beats', 'batch': size['batches'][-1],
                'framework': 'jax', 'dtype': 'bfloat16'})
  for framework in ['jax'] + (['torch'] if torch_available else []):
    cases.append({'kind': 'train', 'framework': framework})
  if platform != 'cpu':
    # The fused kernel's rows, and the DCASE configuration's LoRA step: global batch 32 of
    # two-channel 10-s clips, layers rematerialised as configs/dcase2026_beats.py does.
    for model in ('beats', 'audiomae'):
      cases.append({'kind': 'encoder', 'model': model, 'batch': size['batches'][-1],
                    'framework': 'jax', 'dtype': 'bfloat16', 'attention': 'fused'})
    cases += [{'kind': 'train', 'framework': 'jax', 'remat': 'attention', 'batch': 32},
              {'kind': 'train', 'framework': 'jax', 'remat': 'attention', 'batch': 32,
               'dtype': 'bfloat16'}]
    if torch_available:
      cases.append({'kind': 'train', 'framework': 'torch', 'batch': 32})
  for remat in ('attention', 'full'):  # what rematerialising the layers costs and saves
    cases.append({'kind': 'train', 'framework': 'jax', 'remat': remat})
  for method in ('knn', 'mahalanobis'):
    for framework in ('jax', 'sklearn'):
      cases.append({'kind': 'scoring', 'method': method, 'framework': framework})
  for encoders in ('tiny', 'full') if size_name.startswith('full') else ('tiny',):
    cases.append({'kind': 'detector', 'encoders': encoders, 'batch': size['batches'][-1],
                  'framework': 'jax'})
  for case in cases:
    case.update(size=size_name, platform=platform)
  return cases


# The cases of benchmarks/device_check.sh (under 8 minutes on an H100): every encoder row at
# batch 64 (JAX float32 / bf16 / bf16 fused beside PyTorch eager and torch.compile) and the DCASE
# LoRA step at global batch 32 (JAX float32 and bf16, remat=attention, beside PyTorch).
DEVICE_CHECK = r'forward b=64|b=32$'


def label(case: dict) -> str:
  dtype = f" {case['dtype']}" if case.get('dtype') else ''
  if case['kind'] == 'encoder':
    attention = f" {case['attention']}" if case.get('attention', 'matmul') != 'matmul' else ''
    return f"{case['model']} forward b={case['batch']}{dtype}{attention}"
  if case['kind'] == 'train':
    remat = f" remat={case['remat']}" if case.get('remat', 'none') != 'none' else ''
    batch = f" b={case['batch']}" if 'batch' in case else ''
    return f'LoRA train step (BEATs){remat}{dtype}{batch}'
  if case['kind'] == 'scoring':
    return f"{case['method']} scoring"
  if case['kind'] == 'detector':
    return f"detector scoring ({case['encoders']}) b={case['batch']}"
  if case['kind'] == 'gemm':
    return 'encoder GEMM rate'
  return 'matmul peak'


def table(results: list[dict], peak: float) -> str:
  """One row per case label: JAX vs the best reference in the same run (by wall time, and by
  process CPU time per item, which a busy VM host does not inflate), both as a share of the
  measured matmul peak, and the limit: the items/s the case's matmul FLOPs allow at that peak
  (its roofline on this machine; fbank, softmax and norms not counted)."""
  rows = {}
  for r in results:
    rows.setdefault(label(r['case']), {})[r['case']['framework'] if 'framework' in r['case']
                                          else 'jax'] = r
  header = ['case', 'JAX items/s', 'compile s', 'torch eager', 'torch.compile', 'sklearn',
            'JAX / best ref', 'same, CPU time', '% of matmul peak (JAX / best ref)',
            'limit items/s', 'peak MB (JAX / ref; GPU: device)']
  by_round = any(len(r.get('round_clips_per_s', ())) > 1 for r in results)
  if by_round:
    header.append('JAX / best ref, each round')
  lines = [header]
  for name, by in rows.items():
    if name in ('matmul peak', 'encoder GEMM rate'):
      continue
    jax_r = by.get('jax', {})
    # PyTorch runs each shape once, in float32: JAX's rematerialised, bf16 and fused variants
    # are measured against that row.
    plain = re.sub(r' remat=\S+| bfloat16| fused', '', name)
    ref_by = by if len(by) > 1 or plain not in rows else rows[plain]
    refs = {k: v for k, v in ref_by.items() if k != 'jax' and 'clips_per_s' in v}
    best = max((v['clips_per_s'] for v in refs.values()), default=None)
    least_cpu = min((v['cpu_s_per_item'] for v in refs.values() if 'cpu_s_per_item' in v),
                    default=None)
    cpu_ratio = (f"{least_cpu / jax_r['cpu_s_per_item']:.2f}x"
                 if least_cpu and jax_r.get('cpu_s_per_item') else '-')
    fmt = lambda r: f"{r['clips_per_s']:.2f}" if r and 'clips_per_s' in r else (
        r.get('error', '-')[:30] if r else '-')
    share, limit = '', ''
    if jax_r.get('gflop') and 'clips_per_s' in jax_r and 'batch' in jax_r['case']:
      per_item = jax_r['gflop'] / jax_r['case']['batch']  # GFLOP per clip
      percent = lambda rate: f'{100 * rate * per_item / peak:.0f} %'
      share = percent(jax_r['clips_per_s']) + (f' / {percent(best)}' if best else '')
      limit = f'{peak / per_item:.2f}'
    key = 'peak_device_mb' if 'peak_device_mb' in jax_r else 'peak_rss_mb'
    rss = f"{jax_r.get(key, 0):.0f} / " + ', '.join(
        f"{v[key]:.0f}" for v in refs.values() if key in v)
    lines.append([name, fmt(jax_r), f"{jax_r.get('compile_s', 0):.1f}", fmt(by.get('torch')),
                  fmt(by.get('torch_compile')), fmt(by.get('sklearn')),
                  f"{jax_r['clips_per_s'] / best:.2f}x" if best and 'clips_per_s' in jax_r
                  else '-', cpu_ratio, share, limit, rss])
    if by_round:
      lines[-1].append(_ratios_by_round(jax_r, list(refs.values())))
  widths = [max(len(str(row[i])) for row in lines) for i in range(len(header))]
  return '\n'.join('  '.join(str(c).ljust(w) for c, w in zip(row, widths)) for row in lines)


def _ratios_by_round(jax_r: dict, refs: list[dict]) -> str:
  """'1.02, 0.97': JAX's clips/s over the best reference's, round by round."""
  jax_rounds = jax_r.get('round_clips_per_s', [])
  ratios = []
  for i, rate in enumerate(jax_rounds):
    ref_rates = [r['round_clips_per_s'][i] for r in refs
                 if len(r.get('round_clips_per_s', ())) > i and r['round_clips_per_s'][i]]
    ratios.append(f'{rate / max(ref_rates):.2f}' if rate and ref_rates else '-')
  return ', '.join(ratios) or '-'


def rounds_by_case(results: list[dict]) -> list[list[dict]]:
  """The results of a run of several rounds, gathered per case (the same case dict), each
  case's rounds in order."""
  groups: dict[str, list[dict]] = {}
  for r in results:
    groups.setdefault(json.dumps(r['case'], sort_keys=True), []).append(r)
  return list(groups.values())


def best_of_rounds(results: list[dict]) -> list[dict]:
  """One result per (case, framework): the round with the shortest step, carrying every
  round's clips/s in order ('round_clips_per_s', None where a round failed), so that a table
  of best rounds still shows how much the host moved them."""
  best = []
  for runs in rounds_by_case(results):
    timed = [r for r in runs if 'step_s' in r]
    chosen = dict(min(timed, key=lambda r: r['step_s']) if timed else runs[0])
    chosen['round_clips_per_s'] = [r.get('clips_per_s') for r in runs]
    best.append(chosen)
  return best


def run_bench(quick: bool, json_path: str | None, reference: str | None, progress=True,
              only: str | None = None, rounds: int = 1) -> dict:
  """Runs the plan (`only`: a regular expression the case labels must match; the matmul peak
  is always measured) `rounds` times, the rounds one after another so that a slow spell of a
  shared host falls on every framework alike, prints the table of each case's best round and
  returns the report (every round's results)."""
  if rounds < 1:
    raise ValueError(f'rounds must be at least 1, got {rounds}')
  import importlib.util
  torch_available = importlib.util.find_spec('torch') is not None
  import jax
  from asd_jax.io import atomic_write_text
  backend = jax.default_backend()
  size_name = 'quick' if quick else ('full' if backend == 'cpu' else 'full_gpu')
  cases = [c for c in plan(size_name, torch_available, reference, backend)
           if c['kind'] in ('matmul', 'gemm') or not only or re.search(only, label(c))]
  report = {'device': jax.devices()[0].device_kind, 'platform': backend,
            'cpu_count': os.cpu_count(), 'machine': machine.cpu_model(),
            'size': size_name, 'torch_available': torch_available, 'rounds': rounds,
            'results': []}
  from tqdm import tqdm
  # The machine's rates are measured once; every other case once a round.
  runs = [(0, case) for case in cases] + [
      (index, case) for index in range(1, rounds) for case in cases
      if case['kind'] not in ('matmul', 'gemm')]
  for index, case in tqdm(runs, desc='bench', unit='case', disable=not progress):
    outcome = run_in_subprocess(case, timeout=900)
    report['results'].append({'case': case, 'round': index, **outcome})
    if json_path:  # after every case, so a run cut short keeps what it measured
      atomic_write_text(json_path, json.dumps(report, indent=2))
  best = best_of_rounds(report['results'])
  peak = next(r['gflops'] for r in report['results'] if r['case']['kind'] == 'matmul')
  report['matmul_peak_gflops'] = peak
  print(f"device: {report['device']} ({backend}), {os.cpu_count()} CPUs; "
        f'measured matmul peak {peak:.0f} GFLOP/s')
  gemm = {r['case']['framework']: r['gemm_gflops'] for r in report['results']
          if r['case']['kind'] == 'gemm' and 'gemm_gflops' in r}
  if gemm:
    report['gemm_gflops'] = gemm
    print(machine.describe({'JAX' if k == 'jax' else 'PyTorch': v for k, v in gemm.items()}))
  print(table(best, peak))
  detectors = [r for r in best if r['case']['kind'] == 'detector' and 'overhead' in r]
  for r in detectors:
    print(f"{label(r['case'])}: load + compile {r['compile_s']:.1f} s, "
          f"{r['clips_per_s']:.2f} clips/s against the encoder forward's "
          f"{r['forward_clips_per_s']:.2f} (scoring overhead {100 * r['overhead']:.1f} %) and "
          f"the system's features' {r['features_clips_per_s']:.2f} (forward + clip banks; "
          f"{100 * r['overhead_over_features']:.1f} %), folder {r['detector_mb']:.1f} MB, "
          f"peak {r['peak_rss_mb']:.0f} MB")
  if json_path:
    atomic_write_text(json_path, json.dumps(report, indent=2))
  return report


def _peak_device_mb(case: dict) -> float | None:
  """Peak accelerator memory this process allocated (None on a CPU or for sklearn)."""
  if case.get('platform', 'cpu') == 'cpu' or case.get('framework') == 'sklearn':
    return None
  if case.get('framework', 'jax') == 'jax':
    import jax
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get('peak_bytes_in_use', 0) / 2**20
  import torch
  return torch.cuda.max_memory_allocated() / 2**20


def main() -> None:
  case = json.loads(sys.argv[1])
  result = CASES[case['kind']](case)
  result['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  device_mb = _peak_device_mb(case)
  if device_mb is not None:
    result['peak_device_mb'] = device_mb
  print(json.dumps(result))


if __name__ == '__main__':
  main()
