"""Pre-trained audio encoders (BEATs, AudioMAE) ported to Flax, with hand-written LoRA."""
from asd_jax import cpu_rng  # noqa: F401  (before any dropout mask is compiled)
from asd_jax.encoders.config import AudioMAEConfig, BeatsConfig, LoRAConfig
from asd_jax.encoders.encoder import Encoder, build_module, load_encoder
