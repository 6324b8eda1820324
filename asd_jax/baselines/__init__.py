"""Official DCASE Task 2 baselines (autoencoder: MSE and selective Mahalanobis)."""
