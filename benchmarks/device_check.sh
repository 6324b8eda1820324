#!/usr/bin/env bash
# The GPU check of docs/performance.md, in one run of under 8 minutes on a lent H100/H200:
# nvidia-smi, then `asd-jax bench`'s DEVICE_CHECK cases (benchmarks/throughput.py): the encoders at
# batch 64 in JAX float32, bf16 and bf16 with fused (cuDNN) attention beside PyTorch eager and
# torch.compile, and the DCASE configuration's LoRA step at global batch 32 x 2 channels x 10 s
# in JAX float32 and bf16 (remat=attention) beside PyTorch, each with its peak device memory.
#
# Its image has JAX, Flax, Optax, Orbax and PyTorch but not ml_collections. Prepare, here, once:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux2014_x86_64 -d .whl ml_collections
# then run it with the device tool: command `bash benchmarks/device_check.sh`, carry ['.whl'],
# timeout_s 540. Results: $OUT/bench.json, $OUT/bench.log, $OUT/gpu.txt.
set -euo pipefail
export PYTHONUNBUFFERED=1
export ASD_JAX_KEEP_XLA_DEFAULTS=1  # the XLA CPU dot flags are for CPUs only
OUT=${OUT:-/tmp/device_check}
mkdir -p "$OUT"
site=/tmp/asd_jax_site
rm -rf "$site" && mkdir -p "$site"
if compgen -G '.whl/*.whl' >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl
fi
# The package as setup.py installs it (configs/ and benchmarks/ inside asd_jax), without pip.
cp -r asd_jax "$site/asd_jax"
ln -s "$PWD/configs" "$site/asd_jax/configs"
ln -s "$PWD/benchmarks" "$site/asd_jax/benchmarks"
export PYTHONPATH="$site:$PWD"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv \
  | tee "$OUT/gpu.txt"
python3 -c 'import jax, torch; print("jax", jax.__version__, jax.devices(), "torch", torch.__version__)' \
  | tee -a "$OUT/gpu.txt"
timeout 450 python3 -c "
from asd_jax.benchmarks import throughput
throughput.run_bench(False, '$OUT/bench.json', None, progress=False, only=throughput.DEVICE_CHECK)
" 2>&1 | tee "$OUT/bench.log"
