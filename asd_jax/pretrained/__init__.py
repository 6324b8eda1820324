"""The shipped tiny encoders: BEATs and AudioMAE of the official architectures at small sizes,
pre-trained on the synthetic corpus (MODEL_CARD.md here says how, and how to remake them)."""
import os

SHIPPED_DIR = os.path.dirname(os.path.abspath(__file__))


def shipped_encoder(kind: str) -> str:
  """The converted-checkpoint folder of the shipped tiny `kind` encoder ('beats', 'audiomae')."""
  return os.path.join(SHIPPED_DIR, kind)
