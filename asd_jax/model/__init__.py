"""Two-channel model: gated fusion, pooling, projection and ArcFace heads."""
from asd_jax.model.arcface import CosineHead, arcface_logits, arcface_loss
from asd_jax.model.asd_model import ASDModel
from asd_jax.model.fusion import GatedFusion
