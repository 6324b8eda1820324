"""What bounds a ratio on this machine: its CPU model and each framework's float32 GEMM rate on
the encoders' own weight-matmul shapes (a ViT-B layer: q, k, v and out 768 -> 768, fc1
768 -> 3072, fc2 3072 -> 768, over batch x 513 tokens). Where JAX's rate is below PyTorch's, an
encoder ratio below 1 is the dot back end's, not the port's."""
from __future__ import annotations

import os
import platform
import time

WIDTH, MLP, TOKENS = 768, 3072, 513
# (inputs, outputs, count per layer) of the weight matmuls of one encoder layer.
LAYER_GEMMS = ((WIDTH, WIDTH, 4), (WIDTH, MLP, 1), (MLP, WIDTH, 1))


def cpu_model() -> str:
  """The CPU's model name as /proc/cpuinfo gives it (the machine type elsewhere)."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _best_seconds(fn, repeats: int = 5) -> float:
  fn()
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - start)
  return best


def gemm_rates(framework: str, batch: int = 4) -> dict:
  """{'<in>x<out>': GFLOP/s, ..., 'layer': GFLOP/s of one layer's mix} for float32 matmuls of
  [batch·513, in] by [in, out] in `framework` ('jax': jitted, with the XLA CPU flags `import
  asd_jax` sets; 'torch': torch.mm on every core)."""
  import numpy as np
  rows = batch * TOKENS
  rng = np.random.default_rng(0)
  seconds = {}
  for inputs, outputs, _ in LAYER_GEMMS:
    x = rng.standard_normal((rows, inputs), np.float32)
    w = rng.standard_normal((inputs, outputs), np.float32)
    if framework == 'jax':
      import asd_jax  # noqa: F401  (the CPU dot flags)
      import jax
      xd, wd = jax.device_put(x), jax.device_put(w)
      matmul = jax.jit(lambda a, b: a @ b)
      seconds[inputs, outputs] = _best_seconds(lambda: matmul(xd, wd).block_until_ready())
    else:
      import torch
      torch.set_num_threads(os.cpu_count())
      xt, wt = torch.from_numpy(x), torch.from_numpy(w)
      with torch.inference_mode():
        seconds[inputs, outputs] = _best_seconds(lambda: torch.mm(xt, wt))
  rates = {f'{i}x{o}': 2 * rows * i * o / seconds[i, o] / 1e9 for i, o, _ in LAYER_GEMMS}
  flops = sum(2 * rows * i * o * n for i, o, n in LAYER_GEMMS)
  rates['layer'] = flops / sum(seconds[i, o] * n for i, o, n in LAYER_GEMMS) / 1e9
  return rates


def describe(rates: dict[str, dict]) -> str:
  """One line: the CPU and each framework's layer-mix GEMM rate."""
  parts = [f"{name} {r['layer']:.0f}" for name, r in rates.items() if r]
  return (f"CPU: {cpu_model()}, {os.cpu_count()} cores; encoder-layer GEMM rate "
          f"(batch 4 x {TOKENS} tokens, GFLOP/s): " + ', '.join(parts))
