"""Throughput of the JAX path against PyTorch (asd-jax bench); torch is an optional extra."""
