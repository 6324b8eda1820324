"""Audio front ends in jnp: the Kaldi fbank (BEATs and AudioMAE presets, `fbank`) and the
official baselines' librosa log-mel (`logmel`); `steps`: how both batch their work."""

SAMPLE_RATE = 16000  # every clip is resampled to this rate on reading (data.pipeline)
