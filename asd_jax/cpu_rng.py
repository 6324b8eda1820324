"""JAX's threefry PRNG lowered on CPU as straight-line code (imported by asd_jax.encoders).

Kept out of asd_jax/__init__.py so that `asd-jax --help` does not import JAX.
"""
import os


def use_unrolled_threefry_on_cpu() -> None:
  """Lowers JAX's threefry PRNG on CPU as straight-line code instead of a 5-step loop.

  JAX's CPU lowering rolls threefry's rounds into a while loop, which writes the whole counter
  state to memory five times: a dropout mask over one BEATs layer's [8, 12, 496, 496]
  attention probabilities took 320 ms, as long as the layer's matmuls. The unrolled lowering
  (JAX's own, the one GPUs use when not calling a kernel) fuses into one pass: 32 ms, the same
  bits (tests/test_cpu_backend.py). Private JAX API, so a JAX without it gets a warning.
  """
  if os.environ.get('ASD_JAX_KEEP_XLA_DEFAULTS'):
    return
  try:
    from jax._src.interpreters import mlir
    from jax._src.random import threefry2x32
    mlir.register_lowering(threefry2x32.threefry2x32_p,
                           threefry2x32._threefry2x32_lowering_rule, platform='cpu')
  except (ImportError, AttributeError) as error:
    import warnings
    warnings.warn(f'asd_jax: keeping JAX\'s rolled CPU threefry ({error}); dropout-heavy training '
                  'steps run slower on CPU')


use_unrolled_threefry_on_cpu()
