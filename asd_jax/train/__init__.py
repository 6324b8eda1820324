"""Train state, jitted multi-device step, loop and Orbax checkpointing."""
