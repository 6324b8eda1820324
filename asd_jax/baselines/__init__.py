"""Reference systems: the official DCASE Task 2 autoencoder baselines (MSE and selective
Mahalanobis) and the log-mel Mahalanobis reference detector."""
