"""Metrics (AUC, pAUC, harmonic means), DCASE CSV I/O, the results table and plots."""
