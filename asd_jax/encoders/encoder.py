"""`Encoder`: a converted BEATs or AudioMAE with its own front end, called on waveforms."""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

from asd_jax.audio import fbank as fbank_lib
from asd_jax.encoders import lora as lora_lib
from asd_jax.encoders.audiomae import AudioMAEEncoder
from asd_jax.encoders.beats import BEATs
from asd_jax.encoders.checkpoint import load_converted
from asd_jax.encoders.config import AudioMAEConfig, BeatsConfig, EncoderConfig, LoRAConfig


def build_module(config: EncoderConfig, lora: LoRAConfig | None = None, dtype=jnp.float32,
                 remat: str = 'none', attention: str = 'matmul'):
  """The Flax module for `config` (fbank -> tokens), with LoRA adapters where configured, the
  layers rematerialised in training as `remat` says (layers.REMAT_POLICIES) and attention
  computed as `attention` says (layers.ATTENTION)."""
  if isinstance(config, BeatsConfig):
    return BEATs(config, lora, dtype, remat, attention)
  if isinstance(config, AudioMAEConfig):
    return AudioMAEEncoder(config, lora, dtype, remat, attention)
  raise TypeError(f'not an encoder config: {type(config).__name__}')


def front_end_preset(config: EncoderConfig) -> fbank_lib.FbankPreset:
  """The encoder's front end; AudioMAE pads/truncates to its configured input length."""
  if isinstance(config, BeatsConfig):
    return fbank_lib.BEATS
  return dataclasses.replace(fbank_lib.AUDIOMAE, num_frames=config.num_frames)


def check_wave(wave) -> jnp.ndarray:
  """A float waveform batch [B, S]; anything else is refused with a one-line reason."""
  shape = getattr(wave, 'shape', None)
  if shape is None or len(shape) != 2:
    raise ValueError(f'expected a waveform batch of shape [B, S], got shape {shape}')
  if not jnp.issubdtype(wave.dtype, jnp.floating):
    raise ValueError(f'expected float samples in [-1, 1], got dtype {wave.dtype}')
  return jnp.asarray(wave, jnp.float32)


class Encoder:
  """A pre-trained encoder: `enc(wave)` [B, S] at 16 kHz -> official tokens [B, N, D].

  `apply(params, wave, ...)` is the pure function behind it, for use inside jitted training
  steps; `params` may carry LoRA leaves when the encoder was built with a LoRA config.
  """

  def __init__(self, config: EncoderConfig, params, lora: LoRAConfig | None = None,
               dtype=jnp.float32, attention: str = 'matmul'):
    self.config = config
    self.lora = lora
    self.module = build_module(config, lora, dtype, attention=attention)
    self.preset = front_end_preset(config)
    # On the device once: host (NumPy) weights would otherwise be copied at every call, which
    # on a GPU cost a full-size BEATs ~60 ms per batch (README, Performance).
    self.params = None if params is None else jax.device_put(params)
    self._tokens = jax.jit(functools.partial(self.apply, classify=False))
    self._classify = jax.jit(functools.partial(self.apply, classify=True))

  def apply(self, params, wave, deterministic: bool = True, rngs=None, classify: bool = False):
    """Pure: waveform [B, S] -> tokens [B, N, D] (or class scores with classify=True)."""
    features = fbank_lib.encoder_fbank(wave, self.preset, self.config.num_mel_bins)
    return self.module.apply({'params': params}, features, deterministic=deterministic,
                             classify=classify, rngs=rngs)

  def init_params(self, rng, num_samples: int = 16000) -> Any:
    """Fresh parameters (random weights; zero LoRA B) for a clip length of `num_samples`."""
    features = jax.eval_shape(
        lambda w: fbank_lib.encoder_fbank(w, self.preset, self.config.num_mel_bins),
        jax.ShapeDtypeStruct((1, num_samples), jnp.float32))
    classify = bool(getattr(self.config, 'finetuned_model', False)
                    or getattr(self.config, 'finetuned', False))
    variables = self.module.init(rng, jnp.zeros(features.shape, jnp.float32),
                                 classify=classify)
    return variables['params']

  def with_lora(self, lora: LoRAConfig, rng) -> 'Encoder':
    """A copy with LoRA adapters added (A random, B zero) on top of these frozen weights."""
    adapted = Encoder(self.config, None, lora, self.module.dtype, self.module.attention)
    adapted.params = lora_lib.overlay(adapted.init_params(rng), self.params)
    return adapted

  def __call__(self, wave) -> jnp.ndarray:
    return self._tokens(self.params, check_wave(wave))

  def classify(self, wave) -> jnp.ndarray:
    """Fine-tuned files only: BEATs class probabilities / AudioMAE head logits, [B, classes]."""
    return self._classify(self.params, check_wave(wave))


def load_encoder(path: str, lora: LoRAConfig | None = None, dtype=jnp.float32,
                 rng: jax.Array | None = None) -> Encoder:
  """Loads a folder written by `python -m checkpoints_convert` (optionally adding LoRA)."""
  params, config = load_converted(path)
  encoder = Encoder(config, params, None, dtype)  # puts the weights on the device
  if lora is not None and lora.rank > 0:
    encoder = encoder.with_lora(lora, rng if rng is not None else jax.random.PRNGKey(0))
  return encoder
