"""Audio front end: Kaldi fbank in jnp with the BEATs and AudioMAE presets."""
from asd_jax.audio.fbank import (AUDIOMAE, BEATS, FbankPreset, audiomae_fbank, beats_fbank,
                                 encoder_fbank, kaldi_fbank, mel_filterbank, num_frames)
