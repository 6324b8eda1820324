"""Audio front ends in jnp: the Kaldi fbank (BEATs and AudioMAE presets, `fbank`) and the official
baselines' librosa log-mel (`logmel`), both over rows in steps on a CPU (`steps`)."""

SAMPLE_RATE = 16000  # every clip is resampled to this rate on reading (data.pipeline)
