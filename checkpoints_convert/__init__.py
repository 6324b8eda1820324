"""Official PyTorch checkpoints (BEATs, AudioMAE) -> Orbax checkpoints of Flax params."""
