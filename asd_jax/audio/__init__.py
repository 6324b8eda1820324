"""Audio front ends: Kaldi fbank in jnp (BEATs and AudioMAE presets, `fbank`) and the official
baselines' librosa log-mel (`logmel`)."""

SAMPLE_RATE = 16000  # every clip is resampled to this rate on reading (data.pipeline)
