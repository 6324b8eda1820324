"""Inference: embeddings of trained branches."""
