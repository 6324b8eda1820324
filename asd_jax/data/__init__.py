"""DCASE data layout, the built-in synthetic dataset, and the Grain input pipeline."""
