"""Normal-reference scoring: Ledoit-Wolf, Mahalanobis and kNN, robust z, fusion, systems."""
