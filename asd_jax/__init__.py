"""asd-jax: unsupervised anomalous sound detection (DCASE 2026 Task 2) in JAX/Flax.

Layout follows the data flow: audio/ (Kaldi fbank) -> encoders/ (BEATs, AudioMAE, LoRA) ->
model/ (gated two-channel fusion, heads) -> data/ -> train/ -> scoring/ -> evaluation/.
"""
__version__ = '0.1.0'
