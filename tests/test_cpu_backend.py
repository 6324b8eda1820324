"""asd_jax picks XLA's CPU dot back end and plain row reductions (asd_jax/__init__.py) without
overriding the user's flags."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

import asd_jax

PRINT_FLAGS = 'import asd_jax, os; print(os.environ.get("XLA_FLAGS", ""))'


def _flags_after_import(**env) -> str:
  clean = {k: v for k, v in os.environ.items()
           if k not in ('XLA_FLAGS', 'ASD_JAX_KEEP_XLA_DEFAULTS')}
  return subprocess.run([sys.executable, '-c', PRINT_FLAGS], env={**clean, **env}, check=True,
                        capture_output=True, text=True).stdout.strip()


def test_import_adds_the_cpu_flags_but_keeps_the_users():
  assert _flags_after_import() == ('--xla_cpu_experimental_ynn_fusion_type= '
                                   '--xla_cpu_use_xnnpack=true '
                                   '--xla_disable_hlo_passes=tree_reduction_rewriter')
  assert _flags_after_import(XLA_FLAGS='--xla_cpu_use_xnnpack=false') == (
      '--xla_cpu_use_xnnpack=false --xla_cpu_experimental_ynn_fusion_type= '
      '--xla_disable_hlo_passes=tree_reduction_rewriter')
  assert _flags_after_import(XLA_FLAGS='--xla_force_host_platform_device_count=2',
                             ASD_JAX_KEEP_XLA_DEFAULTS='1') == (
                                 '--xla_force_host_platform_device_count=2')
  # A pass disabled by name would be disabled on every back end: only where JAX has the CPU alone.
  assert _flags_after_import(JAX_PLATFORMS='cuda,cpu') == (
      '--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_use_xnnpack=true')
  assert _flags_after_import(JAX_PLATFORMS='cpu').endswith(
      '--xla_disable_hlo_passes=tree_reduction_rewriter')


@pytest.mark.skipif(jax.default_backend() != 'cpu', reason='the flags concern the CPU back end')
def test_this_process_compiles_dots_outside_ynnpack():
  assert 'xla_cpu_use_xnnpack=true' in os.environ['XLA_FLAGS'], asd_jax.CPU_XLA_FLAGS
  hlo = jax.jit(lambda a, b: jax.nn.gelu(a @ b)).lower(
      jnp.ones((64, 32)), jnp.ones((32, 16))).compile().as_text()
  instructions = [line for line in hlo.splitlines() if ' = ' in line and 'metadata' in line]
  assert any(' dot(' in line for line in instructions)
  assert not any('ynn_fusion' in line.split(' = ')[0] for line in instructions)


ROW_REDUCTIONS = ('import asd_jax, jax, jax.numpy as jnp; '
                  'f = lambda x: jax.nn.softmax(x, -1) - x.mean(-1, keepdims=True); '
                  'print("reduce-window" in jax.jit(f).lower(jnp.ones((8, 768))).compile()'
                  '.as_text())')


@pytest.mark.skipif(jax.default_backend() != 'cpu', reason='the flags concern the CPU back end')
def test_long_row_reductions_stay_one_reduce():
  """The softmax's max and sum and a 768-wide mean are plain reduces, where XLA's CPU pipeline
  with the dot flags alone splits each into a reduce-window and a reduce."""
  clean = {k: v for k, v in os.environ.items() if k != 'ASD_JAX_KEEP_XLA_DEFAULTS'}
  split = {flags: subprocess.run([sys.executable, '-c', ROW_REDUCTIONS],
                                 env={**clean, 'XLA_FLAGS': flags}, check=True,
                                 capture_output=True, text=True).stdout.strip()
           for flags in ('', '--xla_disable_hlo_passes=')}
  assert split == {'': 'False', '--xla_disable_hlo_passes=': 'True'}


DROPOUT_BITS = ('import jax, numpy as np, asd_jax.encoders; '
                'bits = jax.jit(lambda k: jax.random.bits(k, (3, 4097)))(jax.random.key(7)); '
                'print(np.asarray(bits).tobytes().hex())')


@pytest.mark.skipif(jax.default_backend() != 'cpu', reason='the threefry lowering concerns CPU')
def test_unrolled_threefry_draws_the_same_bits_without_a_loop():
  import asd_jax.encoders  # noqa: F401  (registers the lowering)
  hlo = jax.jit(lambda k: jax.random.bernoulli(k, 0.9, (8, 64))).lower(
      jax.random.key(0)).compile().as_text()
  assert ' while(' not in hlo, 'threefry still lowered as a loop on CPU'
  clean = {k: v for k, v in os.environ.items() if k != 'ASD_JAX_KEEP_XLA_DEFAULTS'}
  stock, unrolled = (subprocess.run([sys.executable, '-c', DROPOUT_BITS], env={**clean, **env},
                                    check=True, capture_output=True, text=True).stdout
                     for env in ({'ASD_JAX_KEEP_XLA_DEFAULTS': '1'}, {}))
  assert len(stock) > 1000 and stock == unrolled
