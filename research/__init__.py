"""Research around asd-jax, run from the repository (python -m research...); the installed
package never imports it (big_vision's proj/ idea). heldout/: machine families no choice saw,
and their evaluation; pretraining/: how the shipped encoders were made."""
