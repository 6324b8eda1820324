"""ml_collections configs: default.py (tiny, CPU, minutes) and the full-size DCASE 2026 ones."""
