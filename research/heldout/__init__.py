"""Held-out machine families and their evaluation (docs/heldout.md); never imported by asd_jax."""
