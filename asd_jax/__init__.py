"""asd-jax: unsupervised anomalous sound detection (DCASE 2026 Task 2) in JAX/Flax.

Layout follows the data flow: audio/ (Kaldi fbank) -> encoders/ (BEATs, AudioMAE, LoRA) ->
model/ (gated two-channel fusion, heads) -> data/ -> train/ -> scoring/ -> evaluation/.
"""
import os

__version__ = '0.1.0'

# XLA's CPU back end sends dots to YNNPACK fusions by default (jaxlib 0.10). On a 2-core
# Xeon those ran the encoders' matmuls at ~120 GFLOP/s where oneDNN reaches ~185, and fused
# whole attention blocks at a third of PyTorch's speed; with YNN fusions off and XNNPACK on,
# both encoders take 27-28 % less CPU time per clip at batch 16 and the same at batch 1
# (docs/performance.md, "CPU: the dot back end and where the time goes"). XLA's CPU pipeline
# also splits every long row reduction (the softmax's max and sum, the layer norm's mean) into
# a reduce-window and a reduce; without that pass the softmax takes 0.5-0.8x the time ("CPU:
# long row reductions stay one reduce"). Its flag is not a CPU-only one, so it is added only
# where JAX can run on nothing but the CPU (JAX_PLATFORMS=cpu, or no GPU/TPU plugin installed).
# Added only where XLA_FLAGS does not set them already and ASD_JAX_KEEP_XLA_DEFAULTS is unset
# (the profile's before/after), and only effective when asd_jax is imported before JAX compiles
# anything.
CPU_XLA_FLAGS = (('--xla_cpu_experimental_ynn_fusion_type', ''),
                 ('--xla_cpu_use_xnnpack', 'true'))
CPU_ONLY_XLA_FLAGS = (('--xla_disable_hlo_passes', 'tree_reduction_rewriter'),)


def _cpu_only() -> bool:
  """Whether JAX can use no back end but the CPU here, decided without importing JAX."""
  platforms = os.environ.get('JAX_PLATFORMS', '')
  if platforms:
    return platforms == 'cpu'
  from importlib import metadata, util  # where JAX looks for its plugins
  return (not metadata.entry_points(group='jax_plugins') and util.find_spec('jax_plugins') is None
          and util.find_spec('libtpu') is None)


def _prefer_fast_cpu_ops() -> None:
  if os.environ.get('ASD_JAX_KEEP_XLA_DEFAULTS'):
    return
  flags = os.environ.get('XLA_FLAGS', '')
  wanted = CPU_XLA_FLAGS + (CPU_ONLY_XLA_FLAGS if _cpu_only() else ())
  extra = [f'{name}={value}' for name, value in wanted if name not in flags]
  if extra:
    os.environ['XLA_FLAGS'] = ' '.join([flags, *extra]).strip()


_prefer_fast_cpu_ops()


def __getattr__(name: str):
  """`from asd_jax import Detector` without importing JAX for every `import asd_jax`."""
  if name == 'Detector':
    from asd_jax.inference.detector import Detector
    return Detector
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
