"""How the shipped tiny encoders were made: the synthetic pre-training corpus and its run
(asd_jax/pretrained/MODEL_CARD.md); never imported by asd_jax."""
